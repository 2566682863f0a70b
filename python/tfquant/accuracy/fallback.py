"""Greedy fallback to an accuracy target, independent of the model format.

The caller measures, once, how sensitive each unit is (the model's output noise when that unit
alone is quantized, at 8 and at 16 bits), and gives an `evaluate` function that returns the
model's SQNR (dB, on held-out samples) for a choice of what each unit is computed as. The search
prefers what costs no size: it walks the units from the most sensitive, moving each that has a
16-bit form to 16-bit activations (int8 weights), until the target is met; if that is not enough,
it walks them again moving each to float. Then it tries each fallen-back unit back at a cheaper
form (float -> 16-bit -> int8), in reverse order, and keeps the cheapest with which the target
still holds, so only the needed units stay out of int8. Deterministic: ties are broken by graph
order.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from tfquant.accuracy.layers import FLOAT, INT8, INT16

@dataclass(frozen=True)
class Sensitivity:
    """A unit's output noise power at the model outputs when it alone is quantized."""
    unit: str
    index: int                  # graph order
    noise_int8: float
    noise_int16: float | None   # None: the unit has no 16-bit form


Choice = dict[str, str]   # unit -> INT8 | INT16 | FLOAT (units not named are INT8)
# From the cheapest form to the dearest.
_FORMS = (INT8, INT16, FLOAT)


@dataclass(frozen=True)
class FallbackResult:
    choice: Choice
    sqnr_db: float              # the model's SQNR with `choice`, as `evaluate` measured it
    met: bool
    reasons: dict[str, str]     # unit -> why it fell back


def fallback_order(sensitivities: Sequence[Sensitivity]) -> list[Sensitivity]:
    """Most sensitive first; graph order breaks ties."""
    return sorted(sensitivities, key=lambda s: (-s.noise_int8, s.index))


def search(sensitivities: Sequence[Sensitivity], evaluate: Callable[[Mapping[str, str]], float],
           target_db: float, start: Mapping[str, str] | None = None) -> FallbackResult:
    """The fewest, cheapest fallbacks, in sensitivity order, with which `evaluate` meets `target_db`.

    `start` is a choice already made (units the caller must keep float); the search adds to it.
    When even every unit float misses the target, the result says so (`met` False).
    """
    choice: Choice = dict(start or {})
    order = fallback_order(sensitivities)
    sqnr = evaluate(choice)
    for form, candidates in ((INT16, [s for s in order if s.noise_int16 is not None]), (FLOAT, order)):
        for sensitivity in candidates:
            if sqnr >= target_db:
                break
            if _FORMS.index(choice.get(sensitivity.unit, INT8)) < _FORMS.index(form):
                choice[sensitivity.unit] = form
                sqnr = evaluate(choice)
    if sqnr < target_db:
        return FallbackResult(choice, sqnr, False, _reasons(choice, sensitivities, target_db))
    for sensitivity in reversed(order):
        if sensitivity.unit in (start or {}):
            continue
        current = choice.get(sensitivity.unit, INT8)
        for cheaper in _FORMS[:_FORMS.index(current)]:
            if cheaper == INT16 and sensitivity.noise_int16 is None:
                continue
            trial = {**choice, sensitivity.unit: cheaper}
            trial_sqnr = evaluate(trial)
            if trial_sqnr >= target_db:
                choice, sqnr = trial, trial_sqnr
                break
    choice = {unit: form for unit, form in choice.items() if form != INT8}
    return FallbackResult(choice, sqnr, True, _reasons(choice, sensitivities, target_db))


def _reasons(choice: Mapping[str, str], sensitivities: Sequence[Sensitivity], target_db: float) -> dict[str, str]:
    by_unit = {s.unit: s for s in sensitivities}
    reasons = {}
    for unit, form in choice.items():
        if form == INT16:
            reasons[unit] = (f"kept at 16-bit activations (int8 weights: no size cost) to meet the {target_db:g} dB "
                             "target: among the most sensitive units (ranked by output noise when it alone is int8)")
        elif form == FLOAT and unit in by_unit:
            why = ("16-bit activations did not suffice" if by_unit[unit].noise_int16 is not None
                   else "it has no 16-bit form")
            reasons[unit] = (f"kept float to meet the {target_db:g} dB target: among the most sensitive units "
                             f"(ranked by output noise when it alone is int8); {why}")
    return reasons
