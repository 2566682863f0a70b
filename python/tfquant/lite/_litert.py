"""Running TFLite models in the LiteRT interpreter: by signature, in batches, with integer IO
quantized and dequantized, and with every intermediate tensor kept for calibration."""
from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from tfquant.accuracy.layers import OutputNoise
from tfquant.dataset import InputSpecs

NUM_THREADS = 2
# The signature key under which a model without SignatureDefs is run (its subgraph 0).
NO_SIGNATURE = "serving_default"


def interpreter(model: bytes, keep_all_tensors: bool = False) -> Interpreter:
    with warnings.catch_warnings():
        # Keeping every tensor is "for debugging only" to LiteRT; to calibration it is the point.
        warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors")
        return Interpreter(model_content=model, num_threads=NUM_THREADS,
                           experimental_preserve_all_tensors=keep_all_tensors)


@dataclass
class Signature:
    """One signature of a model in an interpreter: its subgraph and its inputs and outputs by name."""
    interpreter: Interpreter
    key: str
    subgraph: int
    inputs: dict[str, dict]   # name -> the interpreter's tensor details
    outputs: dict[str, dict]

    @property
    def input_specs(self) -> InputSpecs:
        """{name: (dtype, shape)} with None for a dynamic dimension, for tfquant.dataset."""
        return {name: (np.dtype(d["dtype"]), tuple(None if s < 0 else int(s) for s in d["shape_signature"]))
                for name, d in self.inputs.items()}

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The outputs (float, dequantized if integer) for float inputs (quantized if integer)."""
        fed = {name: quantized(value, self.inputs[name]) for name, value in inputs.items()}
        it = self.interpreter
        if self.key in it.get_signature_list():
            results = it.get_signature_runner(self.key)(**fed)  # resizes the inputs itself
        else:
            for name, value in fed.items():
                it.resize_tensor_input(self.inputs[name]["index"], list(value.shape), strict=False)
            it.allocate_tensors()
            for name, value in fed.items():
                it.set_tensor(self.inputs[name]["index"], value)
            it.invoke()
            results = {name: it.get_tensor(d["index"]) for name, d in self.outputs.items()}
        return {name: dequantized(results[name], self.outputs[name]) for name in self.outputs}

    def tensor(self, index: int, subgraph: int) -> np.ndarray:
        """A tensor's value after a run: a view into the interpreter (valid until its next run) in
        subgraph 0, where LiteRT offers one, else a copy."""
        if subgraph == 0:
            return self.interpreter.tensor(index)()
        return self.interpreter.get_tensor(index, subgraph)


def signatures(it: Interpreter) -> dict[str, Signature]:
    """The model's signatures; a model without SignatureDefs has one, NO_SIGNATURE, named by tensor."""
    listed = it.get_signature_list()
    if not listed:
        return {NO_SIGNATURE: Signature(it, NO_SIGNATURE, 0, {d["name"]: d for d in it.get_input_details()},
                                        {d["name"]: d for d in it.get_output_details()})}
    found = {}
    for key in listed:
        runner = it.get_signature_runner(key)
        found[key] = Signature(it, key, runner._subgraph_index, dict(runner.get_input_details()),
                               dict(runner.get_output_details()))
    return found


def watching_signatures(model: bytes, tensors: Mapping[object, tuple[int, int]]) -> dict[str, Signature]:
    """The signatures of a model whose watched `tensors` ((subgraph, index) each) are extra outputs of
    the signatures' subgraphs; where one is in another subgraph (a control-flow body), an interpreter
    that keeps every tensor (and runs without its fast delegate)."""
    by_key = signatures(interpreter(model))
    if any(subgraph not in {s.subgraph for s in by_key.values()} for subgraph, _ in tensors.values()):
        by_key = signatures(interpreter(model, keep_all_tensors=True))
    return by_key


def quantized(value: np.ndarray, detail: dict) -> np.ndarray:
    """A float input as the interpreter's input tensor takes it (quantized when that is integer)."""
    dtype = np.dtype(detail["dtype"])
    scale, zero_point = detail["quantization"]
    if dtype.kind in "iu" and scale and np.asarray(value).dtype.kind == "f":
        info = np.iinfo(dtype)
        return np.clip(np.round(value / scale) + zero_point, info.min, info.max).astype(dtype)
    return np.asarray(value, dtype)


def dequantized(value: np.ndarray, detail: dict) -> np.ndarray:
    """An output tensor's value as float (dequantized when it is integer)."""
    scale, zero_point = detail["quantization"]
    if np.asarray(value).dtype.kind in "iu" and scale:
        return ((value.astype(np.float64) - zero_point) * scale).astype(np.float32)
    return value


def sqnr_db(reference: Iterable[np.ndarray], approximation: Iterable[np.ndarray]) -> float:
    """Signal-to-quantization-noise ratio of `approximation` against `reference`, over all pairs."""
    noise = OutputNoise()
    for ref, approx in zip(reference, approximation):
        noise.add_pair("", ref, approx)
    return noise.sqnr_db().get("", math.inf)


def held_out(samples: Iterable, every: int, limit: int, kept: list) -> Iterator:
    """`samples` but every `every`-th one (up to `limit` of them), which goes to `kept` instead."""
    for index, sample in enumerate(samples):
        if index % every == every - 1 and len(kept) < limit:
            kept.append(sample)
        else:
            yield sample
