"""Import TensorFlow without the start-up lines its C++ runtime prints to stderr.

TensorFlow logs "oneDNN custom operations are on ..." before its logging is configured, so
TF_CPP_MIN_LOG_LEVEL does not hide it; a command line tool should print only its own output.
"""
from __future__ import annotations

import os
import sys
import tempfile


def import_tensorflow_quietly() -> None:
    """Import tensorflow with fd 2 captured; the captured text is shown only if the import fails
    (not if Ctrl-C stops it: that is reported in one line)."""
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        except Exception:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
