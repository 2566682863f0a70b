"""Python dialect module for the unregistered `tfq` namespace (see the package docstring)."""
from iree.compiler import ir
from iree.compiler.dialects._ods_common import _cext


@_cext.register_dialect
class _Dialect(ir.Dialect):
    DIALECT_NAMESPACE = "tfq"
