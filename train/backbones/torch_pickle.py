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

Sizes are hostile too: every number the pickles hold is checked before it is used. A
storage must have the element count its id claims and lie inside the file; a tensor must
lie inside its storage and have no more elements than it (a 237-byte file whose tensor has
stride 0 and shape 20000 x 20000 would otherwise make numpy allocate 1.6 GB). So memory is
bounded by a small multiple of the file's size, and every malformed file raises one
``ModelError`` that names it.
"""

from __future__ import annotations

import collections
import io
import math
import os
import pickle
import struct
from dataclasses import dataclass

import numpy as np

from itemrec.edge_runtime.errors import ModelError
from itemrec.edge_runtime.files import read_regular_file

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
#: Larger files are refused before reading (InceptionV3's weights are 92 MB).
MAX_FILE_BYTES = 1 << 30
#: Tensors of a real state dict have at most a few dimensions, each below 2^31.
MAX_DIMENSIONS, MAX_EXTENT = 8, 1 << 31
#: Tied weights make several tensors share one storage; more copies than this are hostile.
MAX_COPIES_OF_THE_STORAGES = 4

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


@dataclass(frozen=True)
class _StorageType:
    name: str

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(STORAGE_DTYPES[self.name])


@dataclass(frozen=True)
class _StorageRef:
    storage_type: _StorageType
    key: str  # the root storage, as named in the keys pickle
    numel: int  # the root storage's element count
    view: tuple[int, int] | None  # (element offset, element count) into the root, or None


@dataclass(frozen=True)
class _TensorRef:
    storage: _StorageRef
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


class _Malformed(Exception):
    """A value in the pickles that a state dict cannot hold (reported with the file's name)."""


def _count(value, what: str, limit: int = 1 << 62) -> int:
    """``value`` if it is a plain int in ``[0, limit)``, else ``_Malformed``."""
    if type(value) is not int or not 0 <= value < limit:
        raise _Malformed(f"{what} is {str(value)[:40]!r}, not a count")
    return value


def _rebuild_tensor_v2(storage, storage_offset, size, stride, *_unused):
    """Stand-in for ``torch._utils._rebuild_tensor_v2``: check and record where the tensor lives."""
    if not isinstance(storage, _StorageRef):
        raise _Malformed("_rebuild_tensor_v2 called without a storage")
    if not isinstance(size, tuple | list) or not isinstance(stride, tuple | list):
        raise _Malformed("a tensor's size and stride must be tuples")
    if len(size) != len(stride) or len(size) > MAX_DIMENSIONS:
        raise _Malformed(f"a tensor with size {str(size)[:60]} and stride {str(stride)[:60]}")
    return _TensorRef(
        storage,
        _count(storage_offset, "a tensor's offset"),
        tuple(_count(n, "a tensor's size", MAX_EXTENT) for n in size),
        tuple(_count(n, "a tensor's stride", MAX_EXTENT) for n in stride),
    )


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
            raise _Malformed(f"unexpected persistent id {str(pid)[:80]}")
        _, storage_type, key, _location, numel, view = pid
        if not isinstance(storage_type, _StorageType):
            raise _Malformed(f"unknown storage type {str(storage_type)[:40]}")
        if not isinstance(key, str | int) or len(str(key)) > 64:
            raise _Malformed(f"storage key {str(key)[:40]!r}")
        numel = _count(numel, "a storage's size")
        if view is not None:  # (view key, offset, size) of a slice of the root storage
            if not (isinstance(view, tuple) and len(view) == 3):
                raise _Malformed(f"storage view {str(view)[:60]}")
            start, count = _count(view[1], "a view's offset"), _count(view[2], "a view's size")
            if start + count > numel:
                raise _Malformed(f"a view of {count} elements at {start} outside {numel}")
            view = (start, count)
        return _StorageRef(storage_type, str(key), numel, view)


def read_legacy_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Return the tensors of the legacy torch ``state_dict`` file at ``path`` as numpy arrays.

    Raises :class:`ModelError` naming the file if a pickle names any global other than
    tensors, storages and ``OrderedDict``, and for any other malformed, hostile or
    unsupported file (e.g. the zip format of torch >= 1.6).
    """
    source = os.fspath(path)
    data = read_regular_file(source, MAX_FILE_BYTES, ModelError, "a weights file")
    if data[:2] == b"PK":
        raise ModelError(f"{source}: zip-format torch file (>= 1.6) is not supported")
    stream = io.BytesIO(data)
    try:
        return _read(stream, source)
    except _Malformed as err:
        raise ModelError(f"{source}: not a valid state dict ({err})") from None


def _read(stream: io.BytesIO, source: str) -> dict[str, np.ndarray]:
    def load():
        try:
            return _RestrictedUnpickler(stream, source).load()
        except (ModelError, _Malformed):
            raise
        except Exception as exc:  # truncated or corrupt pickle data: many types
            raise ModelError(f"{source}: corrupt pickle ({str(exc)[:200]})") from None

    if load() != MAGIC_NUMBER:
        raise ModelError(f"{source}: not a legacy torch file (bad magic number)")
    if load() != PROTOCOL_VERSION:
        raise ModelError(f"{source}: unsupported torch protocol version")
    sys_info = load()
    if not (isinstance(sys_info, dict) and sys_info.get("little_endian", False) is True):
        raise ModelError(f"{source}: only little-endian files are supported")
    state = load()
    keys = load()
    if not isinstance(state, dict) or not isinstance(keys, list):
        raise ModelError(f"{source}: the pickle is not a state dict")
    roots = _roots(state)
    storages = _read_storages(stream, keys, roots)
    if stream.read(1):
        raise _Malformed("unexpected data after the last storage")
    _check_total_size(state, storages)
    return {name: _materialize(ref, storages) for name, ref in state.items()}


def _roots(state: dict) -> dict[str, _StorageRef]:
    """The root storage of every tensor, by key; a key must always mean the same storage."""
    roots = {}
    for name, ref in state.items():
        if not isinstance(name, str) or not isinstance(ref, _TensorRef):
            raise _Malformed(f"entry {str(name)[:60]!r} is not a named tensor")
        storage = ref.storage
        known = roots.setdefault(storage.key, storage)
        if (known.storage_type, known.numel) != (storage.storage_type, storage.numel):
            raise _Malformed(f"storage {storage.key} is declared twice, differently")
    return roots


def _read_storages(stream: io.BytesIO, keys: list, roots: dict) -> dict[str, np.ndarray]:
    """Each storage in file order: its int64 element count, then its elements."""
    storages = {}
    remaining = len(stream.getbuffer()) - stream.tell()
    for key in keys:
        key = str(key)
        if key not in roots or key in storages:
            raise _Malformed(f"storage {key[:40]} is not used by any tensor, or listed twice")
        header = stream.read(8)
        if len(header) != 8:
            raise _Malformed(f"truncated before storage {key}")
        (numel,) = struct.unpack("<q", header)
        dtype = roots[key].storage_type.dtype
        remaining -= 8
        if numel != roots[key].numel:
            raise _Malformed(f"storage {key} has {numel} elements, its id says {roots[key].numel}")
        if numel * dtype.itemsize > remaining:
            raise _Malformed(f"storage {key} is truncated")
        storages[key] = np.frombuffer(stream.read(numel * dtype.itemsize), dtype=dtype)
        remaining -= numel * dtype.itemsize
    return storages


def _check_total_size(state: dict, storages: dict) -> None:
    """Refuse tensors that together claim far more data than the file holds."""
    stored = sum(array.nbytes for array in storages.values())
    claimed = sum(
        math.prod(ref.shape) * ref.storage.storage_type.dtype.itemsize for ref in state.values()
    )
    if claimed > MAX_COPIES_OF_THE_STORAGES * stored + 1024:
        raise _Malformed(f"the tensors claim {claimed} bytes but the storages hold {stored}")


def _materialize(ref: _TensorRef, storages: dict) -> np.ndarray:
    flat = storages.get(ref.storage.key)
    if flat is None:
        raise _Malformed(f"storage {ref.storage.key} is missing")
    if ref.storage.view is not None:
        start, count = ref.storage.view
        flat = flat[start : start + count]
    elements = math.prod(ref.shape)
    native = flat.dtype.newbyteorder("=")
    if elements == 0:
        return np.zeros(ref.shape, dtype=native)
    last = ref.offset + sum((n - 1) * s for n, s in zip(ref.shape, ref.stride, strict=True))
    if last >= flat.size or elements > flat.size:
        raise _Malformed(f"a tensor of shape {ref.shape} reaches outside its storage")
    view = np.lib.stride_tricks.as_strided(
        flat[ref.offset :],
        shape=ref.shape,
        strides=tuple(s * flat.itemsize for s in ref.stride),
        writeable=False,
    )
    return np.ascontiguousarray(view, dtype=native)
