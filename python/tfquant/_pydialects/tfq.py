"""Python dialect module for the unregistered `tfq` namespace (see the package docstring).

The op classes (`tfq.quantized_op`, `tfq.calibration_point`) are defined in
`tfquant.passes._tfq`, registered against this dialect class when that module is imported.
"""
from iree.compiler import ir
from iree.compiler.dialects._ods_common import _cext


@_cext.register_dialect
class _Dialect(ir.Dialect):
    DIALECT_NAMESPACE = "tfq"
