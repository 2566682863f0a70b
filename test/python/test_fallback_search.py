"""The format-independent fallback search (tfquant.accuracy.fallback) on a model of additive noise:
each unit adds its own noise at the output, by what it is computed as."""
import math

from tfquant.accuracy.fallback import Sensitivity, search
from tfquant.accuracy.layers import FLOAT, INT8, INT16

# unit -> output noise at int8, at int16 (None: no 16-bit form); float adds none. Signal power 1.
NOISE = {"a": (1e-2, 1e-5), "b": (1e-3, 8e-4), "c": (1e-4, 1e-6), "d": (5e-3, None)}


def _sensitivities():
    return [Sensitivity(unit, index, *NOISE[unit]) for index, unit in enumerate(NOISE)]


def _evaluator(calls: list, floor: float = 0.0):
    """`floor`: noise no unit's choice removes (float ops outside the units)."""
    def evaluate(choice):
        calls.append(dict(choice))
        noise = floor + sum({INT8: n8, INT16: n16, FLOAT: 0.0}[choice.get(unit, INT8)]
                            for unit, (n8, n16) in NOISE.items())
        return math.inf if noise == 0 else -10 * math.log10(noise)
    return evaluate


def test_16_bits_first_float_only_where_16_bits_do_not_suffice():
    # 25 dB needs noise <= 3.2e-3. All int8: 1.6e-2. Every unit with a 16-bit form at 16 bits: 5.8e-3.
    # Then float from the most sensitive: a (5.8e-3), d (8.0e-4): met. The prune puts c and b back at
    # int8 (1.1e-3) and a at 16 bits (1.1e-3); d cannot go back.
    result = search(_sensitivities(), _evaluator([]), 25.0)
    assert result.met and result.sqnr_db >= 25.0
    assert result.choice == {"a": INT16, "d": FLOAT}
    assert "no size cost" in result.reasons["a"] and "no 16-bit form" in result.reasons["d"]


def test_the_prune_keeps_only_what_the_target_needs():
    # 30.5 dB needs noise <= 8.9e-4: a, b, c at 16 bits and d float (8.1e-4; a went float, then back
    # to 16 bits in the prune). c at int8 (9.1e-4) or b at int8 (1.0e-3) would miss it.
    calls = []
    result = search(_sensitivities(), _evaluator(calls), 30.5)
    assert result.met
    assert result.choice == {"a": INT16, "b": INT16, "c": INT16, "d": FLOAT}
    assert calls[0] == {}   # the baseline is measured first


def test_a_target_met_already_changes_nothing_and_an_unmet_one_says_so():
    assert search(_sensitivities(), _evaluator([]), 10.0).choice == {}
    result = search(_sensitivities(), _evaluator([], floor=1e-6), 70.0)   # float ops alone give 60 dB
    assert not result.met and result.sqnr_db == 60.0 and set(result.choice.values()) == {FLOAT}


def test_units_given_at_the_start_stay_as_given():
    result = search(_sensitivities(), _evaluator([]), 25.0, start={"c": FLOAT})
    assert result.choice["c"] == FLOAT
