"""lit configuration: runs test/passes/*.mlir and test/tools/* through tfquant-opt and filecheck."""
import os
import shutil
import sys

import lit.formats

config.name = "tfquant"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".mlir", ".test"]
config.excludes = ["lit.cfg.py", "python", "Inputs", "Output"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.test_source_root, "Output")

bin_dir = os.path.dirname(sys.executable)
for tool in ("tfquant-opt", "filecheck"):
    if not (shutil.which(tool, path=bin_dir) or shutil.which(tool)):
        lit_config.fatal(f"cannot find {tool}: install the package with its test extras (see README)")
config.environment["PATH"] = os.pathsep.join([bin_dir, config.environment.get("PATH", os.environ.get("PATH", ""))])
config.environment["TF_CPP_MIN_LOG_LEVEL"] = "2"
config.substitutions.append(("%python", sys.executable))
