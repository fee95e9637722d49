"""The DLPack importer: zero-copy, versioned and legacy capsules, offsets,
strides, read-only outputs, foreign devices, ownership."""

import gc
import sys

import numpy as np
import pytest
import torch

import maskrcnn_native as mn

info = mn._C._dlpack_info


def test_torch_tensor_is_seen_without_copy():
    t = torch.arange(24, dtype=torch.float32).reshape(2, 3, 4)
    d = info(t)
    assert d["data_ptr"] == t.data_ptr()
    assert d["shape"] == [2, 3, 4] and d["strides"] == [12, 4, 1]
    assert d["dtype"] == "float32" and d["cpu"] and not d["readonly"]


def test_numpy_array_is_seen_without_copy():
    a = np.arange(12, dtype=np.float64).reshape(3, 4)
    d = info(a)
    assert d["data_ptr"] == a.__array_interface__["data"][0]
    assert d["dtype"] == "float64" and d["strides"] == [4, 1]


def test_views_with_offsets_and_strides():
    t = torch.arange(100, dtype=torch.float32).reshape(10, 10)
    v = t[2:, 3::2]  # storage offset and a non-unit stride
    d = info(v)
    assert d["data_ptr"] == v.data_ptr() == t.data_ptr() + (2 * 10 + 3) * 4
    assert d["shape"] == [8, 4] and d["strides"] == [10, 2]
    a = np.arange(30, dtype=np.float32).reshape(5, 6)[::-1, 1:]  # negative stride
    d = info(a)
    assert d["strides"] == [-6, 1] and d["data_ptr"] == a.__array_interface__["data"][0]


def test_channels_last_strides():
    t = torch.randn(2, 3, 4, 5).to(memory_format=torch.channels_last)
    assert info(t)["strides"] == list(t.stride())


def test_legacy_and_versioned_capsules():
    t = torch.arange(6, dtype=torch.float32)
    legacy = torch.utils.dlpack.to_dlpack(t)  # a "dltensor" capsule
    d = info(legacy)
    assert d["data_ptr"] == t.data_ptr() and d["shape"] == [6]
    with pytest.raises(TypeError, match=r"_dlpack_info: x: DLPack capsule has unexpected name 'used_dltensor'"):
        info(legacy)  # a capsule can be consumed once
    versioned = t.__dlpack__(max_version=(1, 0))
    assert info(versioned)["data_ptr"] == t.data_ptr()


def test_readonly_flag_rejected_for_outputs_only():
    a = np.zeros((2, 2), np.float32)
    a.flags.writeable = False
    assert info(a)["readonly"]  # fine as an input
    with pytest.raises(ValueError, match=r"_dlpack_info: x is read-only; outputs must be writable"):
        info(a, True)


def test_non_dlpack_objects_and_odd_dtypes():
    with pytest.raises(TypeError, match=r"_dlpack_info: x must be a tensor or array supporting DLPack"):
        info([1.0, 2.0])
    assert info(torch.zeros(2, dtype=torch.bool))["dtype"] == "bool"
    assert info(torch.zeros(2, dtype=torch.complex64))["dtype"] == "unsupported dtype"
    with pytest.raises(TypeError, match=r"roi_align: input must be float16, bfloat16, float32 or float64, "
                                        r"got complex64"):
        mn.ops.roi_align(torch.zeros(1, 1, 2, 2, dtype=torch.complex64), torch.zeros(0, 5), 1)
    # The native kernel itself names the dtype the importer could not map.
    with pytest.raises(TypeError, match=r"roi_align: input must be float32 or float64, got unsupported dtype"):
        mn._C.roi_align_forward(torch.zeros(1, 1, 2, 2, dtype=torch.complex64), torch.zeros(0, 5),
                                torch.zeros(0, 1, 1, 1), 1.0, 1, 1, -1, False)


# ---- hand-made capsules (ctypes), to reach the importer's less common paths ----

import ctypes


class DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class DLTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", DLDevice), ("ndim", ctypes.c_int32),
                ("dtype", DLDataType), ("shape", ctypes.POINTER(ctypes.c_int64)),
                ("strides", ctypes.POINTER(ctypes.c_int64)), ("byte_offset", ctypes.c_uint64)]


class DLManagedTensor(ctypes.Structure):
    _fields_ = [("dl_tensor", DLTensor), ("manager_ctx", ctypes.c_void_p), ("deleter", ctypes.c_void_p)]


_keep = []


def make_capsule(array, device_type=1, byte_offset=0, null_strides=True, shape=None):
    """Legacy capsule over `array`'s memory (no deleter: we keep everything alive)."""
    shp = shape or array.shape
    shape_arr = (ctypes.c_int64 * len(shp))(*shp)
    m = DLManagedTensor()
    m.dl_tensor.data = array.ctypes.data
    m.dl_tensor.device = DLDevice(device_type, 0)
    m.dl_tensor.ndim = len(shp)
    m.dl_tensor.dtype = DLDataType(2, 32, 1)
    m.dl_tensor.shape = shape_arr
    m.dl_tensor.strides = None if null_strides else ctypes.cast(
        (ctypes.c_int64 * len(shp))(*[s // 4 for s in array.strides]), ctypes.POINTER(ctypes.c_int64))
    m.dl_tensor.byte_offset = byte_offset
    _keep.extend([array, shape_arr, m])
    new = ctypes.pythonapi.PyCapsule_New
    new.restype = ctypes.py_object
    new.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
    return new(ctypes.addressof(m), b"dltensor", None)


def test_null_strides_mean_row_major_and_byte_offset_applies():
    a = np.arange(20, dtype=np.float32)
    d = info(make_capsule(a, byte_offset=8, shape=(3, 6)))
    assert d["strides"] == [6, 1] and d["shape"] == [3, 6]
    assert d["data_ptr"] == a.ctypes.data + 8


def test_non_cpu_device_is_an_error():
    x = np.zeros((1, 1, 2, 2), np.float32)
    cap = make_capsule(x, device_type=2)  # claims CUDA; never dereferenced
    if mn.build_info()["cuda"]:  # CUDA accepted, but not mixed with CPU tensors
        msg = r"roi_align: rois must be on the same device as input \(cuda:0\), got cpu"
    else:
        msg = r"roi_align: input must be a CPU tensor, got a CUDA tensor"
    with pytest.raises(ValueError, match=msg):
        mn._C.roi_align_forward(cap, np.zeros((0, 5), np.float32), np.zeros((0, 1, 1, 1), np.float32),
                                1.0, 1, 1, -1, False, False)


def test_capsule_input_matches_array_input():
    x = np.random.default_rng(0).standard_normal((1, 2, 6, 6)).astype(np.float32)
    rois = np.array([[0, 0.5, 0.5, 4.5, 5.0]], np.float32)
    out1 = np.empty((1, 2, 2, 2), np.float32)
    out2 = np.empty((1, 2, 2, 2), np.float32)
    mn._C.roi_align_forward(x, rois, out1, 1.0, 2, 2, 2, False, False)
    mn._C.roi_align_forward(make_capsule(x, null_strides=False), rois, out2, 1.0, 2, 2, 2, False, False)
    np.testing.assert_array_equal(out1, out2)


def test_ownership_released():
    """The producer's deleter runs: the exported tensor's refcount returns."""
    t = torch.randn(1000)
    before = sys.getrefcount(t)
    for _ in range(200):
        info(t)
    gc.collect()
    assert sys.getrefcount(t) == before
    a = np.zeros(10)
    before = sys.getrefcount(a)
    for _ in range(200):
        info(a)
    assert sys.getrefcount(a) == before
