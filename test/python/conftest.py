"""Shared fixtures: every test model is built once per session into a temporary directory."""
from __future__ import annotations

import gc
import os
import sys

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"

import pytest  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))

import models  # noqa: E402
import qat_models  # noqa: E402
from tfquant.mlir import ir  # noqa: E402

models.MODELS.update(qat_models.QAT_MODELS)


# Contexts a fixture's cache keeps alive on purpose, so that several tests inspect one import.
_KEPT_CONTEXTS: dict[int, ir.Context] = {}


def keep_context(module: ir.Module) -> None:
    """Let a cached fixture keep `module` (and its context) alive from one test to the next."""
    context = module.context
    _KEPT_CONTEXTS.setdefault(id(context), context)


@pytest.fixture(autouse=True)
def no_live_contexts():
    """After each test, no MLIR context may be left alive (the upstream bindings' own check),
    except those a fixture's cache keeps on purpose (`keep_context`).

    A context holds every constant of its compilation: one that outlives its compilation,
    kept by a cache, a global or a cycle, keeps all its weights in memory.
    """
    yield
    gc.collect()
    assert ir.Context._get_live_count() == len(_KEPT_CONTEXTS), "an MLIR context outlived the test"


class ModelDir(str):
    """A SavedModel directory path that also carries what its builder returned."""

    def __new__(cls, path: str, info: dict):
        self = super().__new__(cls, path)
        self.info = info
        self.inputs = info["inputs"]
        self.signature = info["signature"]
        self.signatures = info.get("signatures", {info["signature"]: info["inputs"]})
        self.cases = info.get("cases", list(self.signatures.items()))
        self.tags = info.get("tags", ["serve"])
        return self


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    """`model_dir(name) -> ModelDir`: the SavedModel built by `models.MODELS[name]`, cached per session.

    The result is the directory's path (a str) with the builder's dict as `.info`
    (`.inputs`, `.signature`, `.signatures` and `.cases` for short).
    """
    cache: dict[str, ModelDir] = {}

    def get(name: str) -> ModelDir:
        if name not in cache:
            path = str(tmp_path_factory.mktemp("models") / name)
            cache[name] = ModelDir(path, models.MODELS[name](path))
        return cache[name]

    return get
