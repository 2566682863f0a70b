"""Greedy fallback to an accuracy target, independent of the model format.

The caller measures, once, how sensitive each unit is (the model's output noise when that unit
alone is quantized, at 8 and at 16 bits), and gives an `evaluate` function that returns the
model's SQNR (dB, on held-out samples) for a choice of what each unit is computed as. The search
walks the units from the most sensitive, moving each to its cheaper fallback that suffices
(16-bit activations where that removes most of its noise, else float), until the target is met;
then it tries each fallen-back unit back at int8, in reverse order, and keeps it there if the
target still holds, so only the needed units stay out of int8. Deterministic: ties are broken by
graph order.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from tfquant.accuracy.layers import FLOAT, INT8, INT16

# 16-bit activations suffice for a unit when they remove at least this share of its noise.
SIXTEEN_BIT_SHARE = 0.9


@dataclass(frozen=True)
class Sensitivity:
    """A unit's output noise power at the model outputs when it alone is quantized."""
    unit: str
    index: int                  # graph order
    noise_int8: float
    noise_int16: float | None   # None: the unit has no 16-bit form


Choice = dict[str, str]   # unit -> INT8 | INT16 | FLOAT (units not named are INT8)


@dataclass(frozen=True)
class FallbackResult:
    choice: Choice
    sqnr_db: float              # the model's SQNR with `choice`, as `evaluate` measured it
    met: bool
    reasons: dict[str, str]     # unit -> why it fell back


def fallback_order(sensitivities: Sequence[Sensitivity]) -> list[Sensitivity]:
    """Most sensitive first; graph order breaks ties."""
    return sorted(sensitivities, key=lambda s: (-s.noise_int8, s.index))


def cheaper_fallback(sensitivity: Sensitivity) -> str:
    """INT16 where 16-bit activations remove most of the unit's noise, else FLOAT."""
    if sensitivity.noise_int16 is not None and sensitivity.noise_int16 <= (1 - SIXTEEN_BIT_SHARE) * sensitivity.noise_int8:
        return INT16
    return FLOAT


def search(sensitivities: Sequence[Sensitivity], evaluate: Callable[[Mapping[str, str]], float],
           target_db: float, start: Mapping[str, str] | None = None) -> FallbackResult:
    """The fewest, cheapest fallbacks, in sensitivity order, with which `evaluate` meets `target_db`.

    `start` is a choice already made (units the caller must keep float); the search adds to it.
    If every unit at its fallback does not meet the target, units at 16 bits are moved to float in
    the same order; if even that does not, the result says so (`met` False) and keeps everything.
    """
    choice: Choice = dict(start or {})
    reasons: dict[str, str] = {}
    order = fallback_order(sensitivities)
    sqnr = evaluate(choice)
    for sensitivity in order:
        if sqnr >= target_db:
            break
        if choice.get(sensitivity.unit, INT8) != INT8:
            continue
        choice[sensitivity.unit] = cheaper_fallback(sensitivity)
        sqnr = evaluate(choice)
        reasons[sensitivity.unit] = _reason(sensitivity, choice[sensitivity.unit], target_db)
    for sensitivity in order:
        if sqnr >= target_db:
            break
        if choice.get(sensitivity.unit) == INT16:
            choice[sensitivity.unit] = FLOAT
            sqnr = evaluate(choice)
            reasons[sensitivity.unit] = _reason(sensitivity, FLOAT, target_db) + "; 16-bit activations did not suffice"
    if sqnr < target_db:
        return FallbackResult(choice, sqnr, False, reasons)
    for sensitivity in reversed(order):
        if sensitivity.unit not in reasons:
            continue
        trial = {unit: kind for unit, kind in choice.items() if unit != sensitivity.unit}
        trial_sqnr = evaluate(trial)
        if trial_sqnr >= target_db:
            choice, sqnr = trial, trial_sqnr
            del reasons[sensitivity.unit]
    return FallbackResult(choice, sqnr, True, reasons)


def _reason(sensitivity: Sensitivity, kind: str, target_db: float) -> str:
    what = "16-bit activations" if kind == INT16 else "float"
    return (f"kept at {what} to meet the {target_db:g} dB target: among the most sensitive units "
            f"(rank by output noise when it alone is int8)")
