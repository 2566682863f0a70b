"""tfq-tfl-modify-io: integer inputs and outputs in place of float ones (the converter's
`inference_input_type` / `inference_output_type`).

On each signature function (the first function when the model has no signature):
* a float argument read only by `tfl.quantize` ops to one type T becomes T itself (int8, int16)
  and those ops go; with uint8 it becomes T's uint8 twin (zero point + 128, same scale) followed
  by one `tfl.quantize` to T;
* a returned `tfl.dequantize(%y)` becomes %y (int8, int16), or a `tfl.quantize` of %y to its
  uint8 twin.
An input or output that is not quantized (the op at it stayed float) is an error naming it.
"""
from __future__ import annotations

from tfquant.mlir import CompileError, ir
from tfquant.pass_registry import PassOption, register_pass
from tfquant.passes._quant import eight_bit_twin, quantized_tensor_type, retyped, tensor_params
from tfquant.passes._tf_ops import create_op, defining_op, erase_dead_ops, replace_op, uses
from tfquant.passes._tfl import DEQUANTIZE, QUANTIZE, io_names, signature_functions

IO_TYPES = ("float32", "int8", "uint8", "int16")
_STORAGE_BITS = {"int8": 8, "uint8": 8, "int16": 16}


@register_pass("tfq-tfl-modify-io", "Make the signature functions' float inputs and outputs int8, uint8 or int16",
               options=(PassOption("input-type", str, "float32", "the inputs' type", choices=IO_TYPES),
                        PassOption("output-type", str, "float32", "the outputs' type", choices=IO_TYPES)))
def tfl_modify_io(module_op: ir.Operation, input_type: str, output_type: str) -> None:
    for function in signature_functions(module_op):
        with function.location:  # building types needs one
            _modify_function(function, input_type, output_type)


def _modify_function(function: ir.Operation, input_type: str, output_type: str) -> None:
    block = function.regions[0].blocks[0]
    if input_type != "float32":
        for argument, name in zip(block.arguments, io_names(function)):
            _retype_input(argument, name, input_type, function.location)
    if output_type != "float32":
        terminator = block.operations[len(block.operations) - 1].operation
        for index, (value, name) in enumerate(zip(list(terminator.operands), io_names(function, outputs=True))):
            terminator.operands[index] = _integer_output(value, name, output_type, terminator.location)
        results = [v.type for v in terminator.operands]
        erase_dead_ops(block, frozenset({DEQUANTIZE}))
    else:
        results = list(ir.FunctionType(ir.TypeAttr(function.attributes["function_type"]).value).results)
    function.attributes["function_type"] = ir.TypeAttr.get(
        ir.FunctionType.get([a.type for a in block.arguments], results))


def _retype_input(argument: ir.Value, name: str, io_type: str, loc: ir.Location) -> None:
    readers = uses(argument)
    types = {str(op.results[0].type) for op in readers if op.name == QUANTIZE}
    if not readers or len(types) != 1 or any(op.name != QUANTIZE for op in readers):
        raise CompileError(f"input '{name}' is not quantized (an op reading it stayed float), so it cannot be "
                           f"{io_type}", loc)
    quantized_type = readers[0].results[0].type
    params = tensor_params(quantized_type)
    if params.storage_bits != _STORAGE_BITS[io_type]:
        raise CompileError(f"input '{name}' is quantized to {params.storage_bits} bits, not {io_type}", loc)
    if io_type == "uint8":
        argument.set_type(quantized_tensor_type(retyped(quantized_type, ir.F32Type.get()), eight_bit_twin(params, signed=False)))
        with ir.InsertionPoint(readers[0]):
            requantized = create_op(QUANTIZE, [argument], [quantized_type], {}, readers[0].location).result
    else:
        argument.set_type(quantized_type)
        requantized = argument
    for reader in readers:
        replace_op(reader, [requantized])


def _integer_output(value: ir.Value, name: str, io_type: str, loc: ir.Location) -> ir.Value:
    producer = defining_op(value)
    if producer is None or producer.name != DEQUANTIZE:
        raise CompileError(f"output '{name}' is not quantized (the op producing it stayed float), so it cannot "
                           f"be {io_type}", loc)
    quantized = producer.operands[0]
    params = tensor_params(quantized.type)
    if params.storage_bits != _STORAGE_BITS[io_type]:
        raise CompileError(f"output '{name}' is quantized to {params.storage_bits} bits, not {io_type}", loc)
    if io_type != "uint8":
        return quantized
    with ir.InsertionPoint(producer):
        twin = quantized_tensor_type(retyped(quantized.type, ir.F32Type.get()), eight_bit_twin(params, signed=False))
        return create_op(QUANTIZE, [quantized], [twin], {}, producer.location).result

