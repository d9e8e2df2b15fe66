"""Approximate scores for a large gallery in one int8 matrix product, with a proven error bound.

A query against 100,000 float32 representatives reads 51 MB: numpy's ``matrix @ q`` is bound
by memory bandwidth (about 3 ms on one core here) and does not fit the 32 MB cache. Stored
as int8 with one scale per row, the same matrix is 12.8 MB. numpy has no fast int8 product,
so the gallery becomes a one-operator ``.tflite`` (``FULLY_CONNECTED``, float32 query, int8
weights: the interpreter's dynamic-range kernel quantises the query and runs an integer
product) that the device's own interpreter runs in about 0.6 ms on one core.

The approximation is bounded. Row ``g`` is stored as ``s * c`` (``c`` int8, ``s = max|g| /
127``, so every element's error is at most ``s / 2``); the kernel quantises the query ``q``
with a step ``h <= (max(q, 0) - min(q, 0)) / 255``. Hence::

    |approx - <q, g>| <= ||q||_1 * s / 2 + h * s * ||c||_1 / 2

and ``bound(q)`` returns that with a whole step for ``h`` (any rounding mode) and the worst
row. ``lookup`` uses it to re-rank exactly: no row whose approximate score is more than the
bound below a proven lower bound of the k-th score can be in the top k.

The flatbuffer is written here with the ``flatbuffers`` runtime (no TensorFlow on the
device); the field numbers are those of the TFLite schema (``schema.fbs``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from itemrec.edge_runtime.errors import ModelError

# TFLite schema constants (tensorflow/compiler/mlir/lite/schema/schema.fbs).
_FULLY_CONNECTED = 9  # BuiltinOperator
_FULLY_CONNECTED_OPTIONS = 8  # BuiltinOptions union index
_FLOAT32, _INT8 = 0, 9  # TensorType
# Version 7 of FULLY_CONNECTED is the first with per-channel int8 weights and asymmetric
# dynamic input quantisation; both LiteRT 2.3 and tflite-runtime 2.14 register it.
_FC_VERSION = 7
_SCHEMA_VERSION = 3
FLOAT_SLACK = 1e-5  # float32 rounding of the kernel's and numpy's sums (|score| <= 1)


def quantize_rows(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(int8 codes, float32 scale per row)`` with ``row ~= scale * codes`` (symmetric)."""
    matrix = np.asarray(matrix, np.float32)
    peak = np.abs(matrix).max(axis=1) if matrix.size else np.zeros(len(matrix), np.float32)
    scales = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    codes = np.clip(np.rint(matrix / scales[:, None]), -127, 127).astype(np.int8)
    return codes, scales


class Int8Scorer:
    """``scores(q)``: approximate ``matrix @ q`` for one query, ``bound(q)`` its worst error."""

    def __init__(
        self,
        rows: int,
        dim: int,
        weight_term: float,
        input_term: float,
        model: bytes | None = None,
        path: str | Path | None = None,
        threads: int = 1,
    ):
        """The scorer in ``model`` (bytes) or at the start of the file ``path`` (mapped)."""
        from itemrec.edge_runtime.interpreter import interpreter_class

        self.rows, self.dim = rows, dim
        self.weight_term, self.input_term = weight_term, input_term  # times ||q||_1, h
        self._model = None if model is None else bytes(model)  # read for the scorer's life
        interpreter, _ = interpreter_class()
        source = {"model_path": str(path)} if model is None else {"model_content": self._model}
        try:
            self._interpreter = interpreter(**source, num_threads=threads, **_builtin(interpreter))
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as err:
            raise ModelError(f"the interpreter cannot run the gallery scorer: {err}") from None
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]
        shape = tuple(self._interpreter.get_output_details()[0]["shape"])
        if shape != (1, rows):
            raise ModelError(f"the gallery scorer gives {shape} scores, expected (1, {rows})")

    @classmethod
    def build(cls, matrix: np.ndarray, threads: int = 1) -> Int8Scorer:
        """Quantise ``matrix`` (N x D float32) row by row and make its scorer."""
        codes, scales = quantize_rows(matrix)
        if codes.ndim != 2 or len(codes) == 0:
            raise ModelError(f"a scorer needs a non-empty N x D matrix, got {codes.shape}")
        l1 = np.abs(codes, dtype=np.int32).sum(axis=1)
        return cls(
            *codes.shape,
            weight_term=float(scales.max()) / 2,
            input_term=float((scales * l1).max()) / 2,
            model=_fully_connected_model(codes, scales),
            threads=threads,
        )

    def parts(self) -> dict:
        """What ``Int8Scorer(**parts)`` needs to come back (the vector cache stores it)."""
        return {
            "model": self._model,
            "rows": self.rows,
            "dim": self.dim,
            "weight_term": self.weight_term,
            "input_term": self.input_term,
        }

    def scores(self, query: np.ndarray) -> np.ndarray:
        """Approximate scores of every row (a view the next call overwrites)."""
        self._interpreter.set_tensor(self._input, query.reshape(1, self.dim))
        self._interpreter.invoke()
        return self._interpreter.tensor(self._output)()[0]

    def bound(self, query: np.ndarray) -> float:
        """The largest ``|approx - exact|`` any row can have for ``query``."""
        step = (max(float(query.max()), 0.0) - min(float(query.min()), 0.0)) / 255
        l1 = float(np.abs(query).sum())
        return l1 * self.weight_term + step * self.input_term + FLOAT_SLACK


def _builtin(interpreter) -> dict:
    """The interpreter's own kernels, not XNNPACK: XNNPACK repacks the 12.8 MB of weights when
    the scorer loads (35-65 ms at 100k x 128, against 0.4 ms), for 0.2 instead of 0.6 ms a
    query (bench_lookup, one core). ``identify`` loads once per call, so loading wins."""
    resolver = getattr(sys.modules[interpreter.__module__], "OpResolverType", None)
    if resolver is None:
        return {}
    return {"experimental_op_resolver_type": resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES}


def _fully_connected_model(codes: np.ndarray, scales: np.ndarray) -> bytes:
    """A ``.tflite``: input ``query`` [1, D] float32 -> FULLY_CONNECTED -> ``scores`` [1, N]."""
    import flatbuffers

    rows, dim = codes.shape
    b = flatbuffers.Builder(codes.nbytes + 8 * rows + 4096)
    # Buffer 1: the weights, 16-byte aligned as the schema asks.
    b.Prep(16, codes.nbytes)
    weights = b.CreateNumpyVector(codes.reshape(-1))
    buffers = [_table(b, []), _table(b, [(0, "offset", weights)])]

    scale_vec = b.CreateNumpyVector(scales)
    zero_vec = b.CreateNumpyVector(np.zeros(rows, np.int64))
    quantization = _table(b, [(2, "offset", scale_vec), (3, "offset", zero_vec)])
    tensors = [
        _tensor(b, "query", [1, dim], _FLOAT32, 0),
        _tensor(b, "gallery", [rows, dim], _INT8, 1, quantization),
        _tensor(b, "scores", [1, rows], _FLOAT32, 0),
    ]
    # fused_activation NONE, weights DEFAULT, keep_num_dims false, asymmetric_quantize_inputs.
    options = _table(b, [(3, "bool", True)])
    op_inputs = b.CreateNumpyVector(np.array([0, 1, -1], np.int32))
    op_outputs = b.CreateNumpyVector(np.array([2], np.int32))
    operator = _table(
        b,
        [
            (0, "uint32", 0),
            (1, "offset", op_inputs),
            (2, "offset", op_outputs),
            (3, "uint8", _FULLY_CONNECTED_OPTIONS),
            (4, "offset", options),
        ],
    )
    name = b.CreateString("gallery_scorer")
    subgraph = _table(
        b,
        [
            (0, "offset", _offsets(b, tensors)),
            (1, "offset", b.CreateNumpyVector(np.array([0], np.int32))),
            (2, "offset", b.CreateNumpyVector(np.array([2], np.int32))),
            (3, "offset", _offsets(b, [operator])),
            (4, "offset", name),
        ],
    )
    opcode = _table(
        b,
        [(0, "int8", _FULLY_CONNECTED), (2, "int32", _FC_VERSION), (3, "int32", _FULLY_CONNECTED)],
    )
    description = b.CreateString("itemrec gallery scorer")
    model = _table(
        b,
        [
            (0, "uint32", _SCHEMA_VERSION),
            (1, "offset", _offsets(b, [opcode])),
            (2, "offset", _offsets(b, [subgraph])),
            (3, "offset", description),
            (4, "offset", _offsets(b, buffers)),
        ],
    )
    b.Finish(model, file_identifier=b"TFL3")
    return bytes(b.Output())


def _tensor(b, name: str, shape, dtype: int, buffer: int, quantization=None) -> int:
    name_offset = b.CreateString(name)
    shape_offset = b.CreateNumpyVector(np.array(shape, np.int32))
    fields = [
        (0, "offset", shape_offset),
        (1, "int8", dtype),
        (2, "uint32", buffer),
        (3, "offset", name_offset),
    ]
    if quantization is not None:
        fields.append((4, "offset", quantization))
    return _table(b, fields)


_SLOTS = {
    "offset": "PrependUOffsetTRelativeSlot",
    "bool": "PrependBoolSlot",
    "int8": "PrependInt8Slot",
    "uint8": "PrependUint8Slot",
    "int32": "PrependInt32Slot",
    "uint32": "PrependUint32Slot",
}


def _table(b, fields) -> int:
    """One table from ``(field number, kind, value)``; every value is written (no defaults)."""
    b.StartObject(max((number for number, _, _ in fields), default=-1) + 1)
    for number, kind, value in fields:
        getattr(b, _SLOTS[kind])(number, value, None)
    return b.EndObject()


def _offsets(b, offsets: list[int]) -> int:
    """A vector of table offsets."""
    b.StartVector(4, len(offsets), 4)
    for offset in reversed(offsets):
        b.PrependUOffsetTRelative(offset)
    try:
        return b.EndVector()
    except TypeError:  # flatbuffers < 2 wants the length
        return b.EndVector(len(offsets))
