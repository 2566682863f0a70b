"""Python dialect module for the unregistered `tf_saved_model` namespace (see the package docstring)."""
from iree.compiler import ir
from iree.compiler.dialects._ods_common import _cext


@_cext.register_dialect
class _Dialect(ir.Dialect):
    DIALECT_NAMESPACE = "tf_saved_model"
