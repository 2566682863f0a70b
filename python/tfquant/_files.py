"""Writing output files so that a reader, or a failed run, never sees a half-written one."""
from __future__ import annotations

import os
import secrets


def write_atomically(path: str, data: bytes) -> None:
    """Write `data` to a new file beside `path`, then rename it over `path`. The new file gets the
    mode a plain open gives under the umask; on any failure (also Ctrl-C) no temporary file is left."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    staging = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(8)}.tmp")
    try:
        with open(staging, "xb") as f:
            f.write(data)
        os.replace(staging, path)
    except BaseException:
        if os.path.exists(staging):
            os.unlink(staging)
        raise
