"""The registry of tfquant's Python passes: a name (`tfq-...`), a one-line summary, typed options.

The MLIR bindings cannot name a Python pass in a pipeline string, so tfquant keeps its own
registry and pipeline parser (`tfquant.pipeline`); upstream passes go to the PassManager as text.
"""
from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tfquant.mlir import CompileError, ir

PassFunction = Callable[..., None]


@dataclass(frozen=True)
class PassOption:
    """One typed option of a pass: `name=value` in a pipeline string."""
    name: str
    type: type
    default: Any
    help: str

    def parse(self, text: str, pass_name: str) -> Any:
        if self.type is bool:
            if text.lower() in ("true", "1"):
                return True
            if text.lower() in ("false", "0"):
                return False
        else:
            try:
                return self.type(text)
            except ValueError:
                pass
        raise ValueError(f"invalid value {text!r} for option '{self.name}' of pass '{pass_name}': "
                         f"expected {self.type.__name__}")

    def format(self, value: Any) -> str:
        return str(value).lower() if self.type is bool else str(value)


@dataclass(frozen=True)
class RegisteredPass:
    """A pass: its name, summary, options, and the function that runs it on a module op."""
    name: str
    summary: str
    function: PassFunction
    options: tuple[PassOption, ...] = field(default_factory=tuple)

    def option(self, name: str) -> PassOption:
        for option in self.options:
            if option.name == name:
                return option
        known = ", ".join(o.name for o in self.options) or "none"
        raise ValueError(f"pass '{self.name}' has no option '{name}' (its options: {known})")

    def defaults(self) -> dict[str, Any]:
        return {o.name: o.default for o in self.options}

    def run(self, module_op: ir.Operation, pass_handle, options: dict[str, Any]) -> None:
        """The PassManager callback: CompileErrors become diagnostics at the op's location.

        Option `per-channel` reaches the pass function as the keyword argument `per_channel`.
        """
        arguments = {name.replace("-", "_"): value for name, value in {**self.defaults(), **options}.items()}
        try:
            self.function(module_op, **arguments)
        except CompileError as error:
            location = error.location or module_op.location
            location.emit_error(error.message)
            pass_handle.signal_pass_failure()


_PASSES: dict[str, RegisteredPass] = {}


def register_pass(name: str, summary: str, options: tuple[PassOption, ...] = ()) -> Callable[[PassFunction], PassFunction]:
    """Decorator: register `fn(module_op, **options)` as the pass `name`."""
    def decorate(function: PassFunction) -> PassFunction:
        if name in _PASSES:
            raise ValueError(f"pass {name} is registered twice")
        _PASSES[name] = RegisteredPass(name, summary, function, tuple(options))
        return function
    return decorate


def registered_passes() -> dict[str, RegisteredPass]:
    """Every registered pass by name (importing `tfquant.passes` registers them all)."""
    import tfquant.passes  # noqa: F401  (registers on import)
    return dict(sorted(_PASSES.items()))


def lookup_pass(name: str) -> RegisteredPass | None:
    return registered_passes().get(name)


def closest_pass_names(name: str) -> list[str]:
    """Registered pass names closest to a misspelt one."""
    return difflib.get_close_matches(name, list(registered_passes()), n=3, cutoff=0.5)
