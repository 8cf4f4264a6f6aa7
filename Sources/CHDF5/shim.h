#ifndef LORS_CHDF5_SHIM_H
#define LORS_CHDF5_SHIM_H
/*
 * HDF5's predefined types, property-list classes and file-access flags are
 * macros that call H5open() and read a global (e.g. `#define H5T_NATIVE_FLOAT
 * (H5OPEN H5T_NATIVE_FLOAT_g)`), which Swift cannot import (reading the `_g`
 * globals directly is rejected in Swift 6 mode). Each getter below returns one.
 * Nothing else belongs in this file.
 */
#include <hdf5.h>

/* Sentinels (H5P_DEFAULT arrives in Swift as Int32; these return hid_t) */
static inline hid_t lors_h5p_default(void) { return H5P_DEFAULT; }
static inline hid_t lors_h5s_all(void) { return H5S_ALL; }
static inline hid_t lors_h5e_default(void) { return H5E_DEFAULT; }
static inline size_t lors_h5t_variable(void) { return H5T_VARIABLE; }

/* Native (memory) datatypes */
static inline hid_t lors_h5t_native_float(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t lors_h5t_native_double(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t lors_h5t_native_int64(void) { return H5T_NATIVE_INT64; }
static inline hid_t lors_h5t_native_int32(void) { return H5T_NATIVE_INT32; }
static inline hid_t lors_h5t_native_uint8(void) { return H5T_NATIVE_UINT8; }

/* File (storage) datatypes: fixed little-endian layouts, readable everywhere */
static inline hid_t lors_h5t_ieee_f32le(void) { return H5T_IEEE_F32LE; }
static inline hid_t lors_h5t_ieee_f64le(void) { return H5T_IEEE_F64LE; }
static inline hid_t lors_h5t_std_i64le(void) { return H5T_STD_I64LE; }
static inline hid_t lors_h5t_std_i32le(void) { return H5T_STD_I32LE; }
static inline hid_t lors_h5t_std_u8le(void) { return H5T_STD_U8LE; }
static inline hid_t lors_h5t_c_s1(void) { return H5T_C_S1; }

/* Property-list classes */
static inline hid_t lors_h5p_file_access(void) { return H5P_FILE_ACCESS; }
static inline hid_t lors_h5p_file_create(void) { return H5P_FILE_CREATE; }
static inline hid_t lors_h5p_dataset_xfer(void) { return H5P_DATASET_XFER; }
static inline hid_t lors_h5p_dataset_create(void) { return H5P_DATASET_CREATE; }
static inline hid_t lors_h5p_group_create(void) { return H5P_GROUP_CREATE; }
static inline hid_t lors_h5p_link_create(void) { return H5P_LINK_CREATE; }
static inline hid_t lors_h5p_attribute_create(void) { return H5P_ATTRIBUTE_CREATE; }

/* File access flags */
static inline unsigned lors_h5f_acc_trunc(void) { return H5F_ACC_TRUNC; }
static inline unsigned lors_h5f_acc_excl(void) { return H5F_ACC_EXCL; }
static inline unsigned lors_h5f_acc_rdonly(void) { return H5F_ACC_RDONLY; }
static inline unsigned lors_h5f_acc_rdwr(void) { return H5F_ACC_RDWR; }

#endif
