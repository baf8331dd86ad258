// HDF5 C API (Debian: libhdf5-dev, serial build) plus accessors for the
// values that HDF5 exposes only as macros over global ids, which Swift cannot import.
#include <hdf5/serial/hdf5.h>

static inline hid_t shim_H5P_DEFAULT(void) { return H5P_DEFAULT; }
static inline hid_t shim_H5S_ALL(void) { return H5S_ALL; }
static inline hid_t shim_H5P_FILE_ACCESS(void) { return H5P_FILE_ACCESS; }
static inline hid_t shim_H5P_DATASET_CREATE(void) { return H5P_DATASET_CREATE; }
static inline hid_t shim_H5T_NATIVE_FLOAT(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t shim_H5T_NATIVE_DOUBLE(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t shim_H5T_NATIVE_INT32(void) { return H5T_NATIVE_INT32; }
static inline hid_t shim_H5T_NATIVE_INT64(void) { return H5T_NATIVE_INT64; }
static inline hid_t shim_H5T_NATIVE_UINT64(void) { return H5T_NATIVE_UINT64; }
static inline hid_t shim_H5T_NATIVE_UINT8(void) { return H5T_NATIVE_UINT8; }
static inline hid_t shim_H5T_C_S1(void) { return H5T_C_S1; }
static inline hid_t shim_H5T_IEEE_F32LE(void) { return H5T_IEEE_F32LE; }
static inline hid_t shim_H5T_STD_I64LE(void) { return H5T_STD_I64LE; }
static inline unsigned shim_H5F_ACC_TRUNC(void) { return H5F_ACC_TRUNC; }
static inline unsigned shim_H5F_ACC_RDONLY(void) { return H5F_ACC_RDONLY; }
static inline unsigned shim_H5F_ACC_RDWR(void) { return H5F_ACC_RDWR; }
static inline size_t shim_H5T_VARIABLE(void) { return H5T_VARIABLE; }
static inline int shim_hdf5_init(void) { return H5open(); }
static inline hid_t shim_H5E_DEFAULT(void) { return H5E_DEFAULT; }
static inline hid_t shim_H5P_LINK_CREATE(void) { return H5P_LINK_CREATE; }
static inline hid_t shim_H5T_NATIVE_INT8(void) { return H5T_NATIVE_INT8; }
static inline hid_t shim_H5T_STD_U8LE(void) { return H5T_STD_U8LE; }
static inline hid_t shim_H5T_IEEE_F64LE(void) { return H5T_IEEE_F64LE; }
