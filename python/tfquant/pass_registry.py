"""The registry of tfquant's Python passes: a name (`tfq-...`), a one-line summary, typed options.

The MLIR bindings cannot name a Python pass in a pipeline string, so tfquant keeps its own
registry and pipeline parser (`tfquant.pipeline`); upstream passes go to the PassManager as text.
"""
from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tfquant.mlir import CompileError, ir

PassFunction = Callable[..., None]


@dataclass(frozen=True)
class PassOption:
    """One typed option of a pass: `name=value` in a pipeline string.

    `type` is bool, int, float or str; a str option with `choices` accepts only those names.
    """
    name: str
    type: type
    default: Any
    help: str
    choices: tuple[str, ...] = ()

    def parse(self, text: str, pass_name: str) -> Any:
        """The typed value of `text`; a ValueError naming the pass, the option and the values it takes."""
        try:
            return self.check(_PARSERS[self.type](text), pass_name)
        except ValueError:
            raise self._invalid(text, pass_name) from None

    def check(self, value: Any, pass_name: str) -> Any:
        """`value` itself if this option takes it (a value given from Python), else a ValueError."""
        # bool is an int to Python, and an int is a fine float.
        typed = isinstance(value, bool) == (self.type is bool) and isinstance(value, _PYTHON_TYPES[self.type])
        if not typed or (self.choices and value not in self.choices) or \
                (self.type is float and not math.isfinite(value)):
            raise self._invalid(value, pass_name)
        return value

    def allowed(self) -> str:
        """The values the option takes, as the errors and --list-passes say it."""
        return "one of " + ", ".join(self.choices) if self.choices else _ALLOWED[self.type]

    def format(self, value: Any) -> str:
        if self.type is bool:
            return str(value).lower()
        # Quoted where a pipeline string would split it (a space) or read it as a nesting.
        return f"'{value}'" if self.type is str and any(c in str(value) for c in " {}()") else str(value)

    def _invalid(self, value: Any, pass_name: str) -> ValueError:
        return ValueError(f"invalid value {value!r} for option '{self.name}' of pass '{pass_name}': "
                          f"expected {self.allowed()}")


def _parse_bool(text: str) -> bool:
    if text.lower() in ("true", "1"):
        return True
    if text.lower() in ("false", "0"):
        return False
    raise ValueError(text)


_PARSERS: dict[type, Callable[[str], Any]] = {bool: _parse_bool, int: int, float: float, str: str}
_PYTHON_TYPES = {bool: bool, int: int, float: (int, float), str: str}
_ALLOWED = {bool: "bool (true or false)", int: "int (an integer)", float: "float (a finite number)",
            str: "str (any string)"}


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

    def run(self, module_op: ir.Operation, pass_handle, options: dict[str, Any], debug: bool = False) -> None:
        """The PassManager callback: CompileErrors become diagnostics at the op's location.

        Any other exception is a bug of the pass on IR it did not expect: a diagnostic naming the
        pass, not a Python traceback; with `debug` it propagates, traceback and all, out of
        `PassManager.run`. Option `per-channel` reaches the pass function as the keyword
        argument `per_channel`.
        """
        arguments = {name.replace("-", "_"): value for name, value in {**self.defaults(), **options}.items()}
        try:
            self.function(module_op, **arguments)
        except CompileError as error:
            location = error.location or module_op.location
            location.emit_error(error.message)
            pass_handle.signal_pass_failure()
        except Exception as error:
            if debug:
                raise
            module_op.location.emit_error(f"internal error in pass '{self.name}': {type(error).__name__}: {error}")
            pass_handle.signal_pass_failure()


_PASSES: dict[str, RegisteredPass] = {}


def register_pass(name: str, summary: str, options: tuple[PassOption, ...] = ()) -> Callable[[PassFunction], PassFunction]:
    """Decorator: register `fn(module_op, **options)` as the pass `name`."""
    def decorate(function: PassFunction) -> PassFunction:
        if name in _PASSES:
            raise ValueError(f"pass {name} is registered twice")
        for option in options:
            if option.type not in _PARSERS:
                raise TypeError(f"option '{option.name}' of pass {name} has type {option.type.__name__}; "
                                "options are bool, int, float or str")
            option.check(option.default, name)
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
    """Registered pass names closest to a misspelt one, compared without the "tfq-" every one shares
    (which would make any two names look alike)."""
    stems = {registered.removeprefix("tfq-"): registered for registered in registered_passes()}
    close = difflib.get_close_matches(name.removeprefix("tfq-"), list(stems), n=3, cutoff=0.5)
    return [stems[stem] for stem in close]
