import CBLAS
// Module Tensor: see docs/architecture.md.
func _probeBLAS() { openblas_set_num_threads(2) }
