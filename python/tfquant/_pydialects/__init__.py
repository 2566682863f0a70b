"""Search-prefix package for the MLIR Python bindings: one module per unregistered dialect
namespace (tf, tf_executor, tf_saved_model, tf_device, tfl, tfq).

Without a module per namespace the bindings retry a failing import for every op they wrap,
which makes iterating a block 25-80x slower (shared/notes/mlir-bindings, section 5).
"""
