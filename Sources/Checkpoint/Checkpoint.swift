import CHDF5
// Module Checkpoint: see docs/architecture.md.
func _probeHDF5() -> Int32 { shim_hdf5_init() }
