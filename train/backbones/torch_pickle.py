"""Read a legacy (pre-1.6, non-zip) PyTorch ``state_dict`` file without torch.

The file is a sequence of pickles followed by raw storages::

    magic number | protocol version | sys info | state dict | storage keys | storages...

The state-dict pickle refers to its tensors through persistent ids
``("storage", <StorageType>, key, location, numel, view)`` wrapped in calls of
``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)``; each storage
then follows, in the order of the keys pickle, as an int64 element count and the
little-endian elements.

Pickles can run arbitrary code, so the unpickler resolves only the globals a plain
state dict needs (``_rebuild_tensor_v2``, storage types, ``OrderedDict``) and raises
:class:`ModelError` for every other one, before anything is called.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
from dataclasses import dataclass

import numpy as np

from itemrec.edge_runtime.errors import ModelError

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001

# torch storage type name -> little-endian numpy dtype of its elements.
STORAGE_DTYPES = {
    "DoubleStorage": "<f8",
    "FloatStorage": "<f4",
    "HalfStorage": "<f2",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}


class ModelError(ModelError):
    """The pickle references a global outside the allowed state-dict vocabulary."""


@dataclass(frozen=True)
class _StorageType:
    name: str

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(STORAGE_DTYPES[self.name])


@dataclass(frozen=True)
class _StorageRef:
    storage_type: _StorageType
    key: str
    numel: int
    view: tuple | None  # (root key, element offset, element count) or None


@dataclass(frozen=True)
class _TensorRef:
    storage: _StorageRef
    offset: int
    shape: tuple
    stride: tuple


def _rebuild_tensor_v2(storage, storage_offset, size, stride, *_unused):
    """Stand-in for ``torch._utils._rebuild_tensor_v2``: record where the tensor lives."""
    if not isinstance(storage, _StorageRef):
        raise ModelError("_rebuild_tensor_v2 called without a storage")
    return _TensorRef(storage, int(storage_offset), tuple(size), tuple(stride))


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that knows only the state-dict vocabulary; refuses everything else."""

    def __init__(self, file, source: str):
        super().__init__(file)
        self._source = source

    def find_class(self, module: str, name: str):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise ModelError(
            f"{self._source}: refusing to load global {module}.{name} "
            "(only tensors, storages and OrderedDict are allowed)"
        )

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise ModelError(f"{self._source}: unexpected persistent id {pid!r}")
        _, storage_type, key, _location, numel, view = pid
        if not isinstance(storage_type, _StorageType):
            raise ModelError(f"{self._source}: unknown storage type {storage_type!r}")
        return _StorageRef(storage_type, str(key), int(numel), None if view is None else view)


def read_legacy_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Return the tensors of the legacy torch ``state_dict`` file at ``path`` as numpy arrays.

    Raises :class:`ModelError` if a pickle names any global other than
    tensors, storages and ``OrderedDict``, and :class:`ModelError` for any
    other malformed or unsupported file (e.g. the zip format of torch >= 1.6).
    """
    source = os.fspath(path)
    try:
        with open(source, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ModelError(f"{source}: cannot read ({exc.strerror})") from exc
    if data[:2] == b"PK":
        raise ModelError(f"{source}: zip-format torch file (>= 1.6) is not supported")
    stream = io.BytesIO(data)

    def load():
        try:
            return _RestrictedUnpickler(stream, source).load()
        except ModelError:
            raise
        except Exception as exc:  # truncated or corrupt pickle data
            raise ModelError(f"{source}: corrupt pickle ({exc})") from exc

    if load() != MAGIC_NUMBER:
        raise ModelError(f"{source}: not a legacy torch file (bad magic number)")
    if load() != PROTOCOL_VERSION:
        raise ModelError(f"{source}: unsupported torch protocol version")
    sys_info = load()
    if not (isinstance(sys_info, dict) and sys_info.get("little_endian", False)):
        raise ModelError(f"{source}: only little-endian files are supported")
    state = load()
    keys = load()
    if not isinstance(state, dict) or not isinstance(keys, list):
        raise ModelError(f"{source}: the pickle is not a state dict")
    storages = _read_storages(stream, [str(k) for k in keys], _storage_types(state, source), source)
    if stream.read(1):
        raise ModelError(f"{source}: unexpected data after the last storage")
    return {str(name): _materialise(ref, storages, source) for name, ref in state.items()}


def _storage_types(state: dict, source: str) -> dict[str, _StorageType]:
    types = {}
    for name, ref in state.items():
        if not isinstance(ref, _TensorRef):
            raise ModelError(f"{source}: entry {name!r} is not a tensor")
        root = ref.storage.key if ref.storage.view is None else str(ref.storage.view[0])
        types[root] = ref.storage.storage_type
    return types


def _read_storages(stream, keys, types, source) -> dict[str, np.ndarray]:
    storages = {}
    for key in keys:
        if key not in types:
            raise ModelError(f"{source}: storage {key} is not used by any tensor")
        header = stream.read(8)
        if len(header) != 8:
            raise ModelError(f"{source}: truncated before storage {key}")
        (numel,) = struct.unpack("<q", header)
        dtype = types[key].dtype
        raw = stream.read(numel * dtype.itemsize)
        if numel < 0 or len(raw) != numel * dtype.itemsize:
            raise ModelError(f"{source}: storage {key} is truncated")
        storages[key] = np.frombuffer(raw, dtype=dtype)
    return storages


def _materialise(ref: _TensorRef, storages, source) -> np.ndarray:
    storage = ref.storage
    if storage.view is None:
        flat = storages.get(storage.key)
    else:
        root, start, count = storage.view
        flat = storages.get(str(root))
        flat = None if flat is None else flat[int(start) : int(start) + int(count)]
    if flat is None:
        raise ModelError(f"{source}: storage {storage.key} is missing")
    if len(ref.shape) != len(ref.stride) or min(ref.stride, default=0) < 0:
        raise ModelError(f"{source}: bad tensor stride {ref.stride}")
    if 0 in ref.shape:
        return np.zeros(ref.shape, dtype=flat.dtype.newbyteorder("="))
    last = ref.offset + sum((n - 1) * s for n, s in zip(ref.shape, ref.stride, strict=True))
    if ref.offset < 0 or last >= flat.size:
        raise ModelError(f"{source}: tensor reaches outside its storage")
    view = np.lib.stride_tricks.as_strided(
        flat[ref.offset :],
        shape=ref.shape,
        strides=tuple(s * flat.itemsize for s in ref.stride),
        writeable=False,
    )
    return np.ascontiguousarray(view, dtype=flat.dtype.newbyteorder("="))
