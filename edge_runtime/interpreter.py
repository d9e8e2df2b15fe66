"""Run an embedding ``.tflite`` on the device: LiteRT, else tflite_runtime.

``EmbeddingModel`` checks the file, reads its ``ModelSpec`` (embedded metadata, else the sidecar
JSON, else derived from the tensor shapes with backbone ``"unknown"``), feeds RGB 0..255 images
(uint8, quantised with the input's scale/zero point, or float32) and returns the embedding
dequantised and re-L2-normalised in float32. The device side never imports TensorFlow, so
``tf.lite`` is no fallback: every extra that installs itemrec brings LiteRT or tflite-runtime.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from itemrec.edge_runtime import native_stderr
from itemrec.edge_runtime.errors import ModelError
from itemrec.edge_runtime.files import read_regular_file
from itemrec.edge_runtime.geometry import center_crop_box, center_crop_resize
from itemrec.edge_runtime.spec import SPEC_METADATA_NAME, ModelSpec, fingerprint_bytes
from itemrec.edge_runtime.spec import sidecar_path as spec_sidecar_path
from itemrec.edge_runtime.tflite_metadata import has_tflite_identifier, read_metadata

LINEAR = cv2.INTER_LINEAR  # the contract's resize (edge_runtime.geometry)
#: Larger model files are refused before reading (InceptionV3 in float32 is 92 MB).
MAX_MODEL_BYTES = 1 << 30


def default_threads() -> int:
    """All cores this process may use (``num_threads=None`` would mean one thread)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def interpreter_class():
    """Return ``(Interpreter class, backend name)``, preferring LiteRT."""
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter, "ai_edge_litert"
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter

        return Interpreter, "tflite_runtime"
    except ImportError:
        raise ModelError(
            "no TFLite interpreter installed: pip install ai-edge-litert "
            "(or tflite-runtime on old Raspberry Pi images)"
        ) from None


class EmbeddingModel:
    """An L2-normalised image embedder behind a TFLite interpreter."""

    def __init__(self, path: str | Path, threads: int | None = None):
        self.path = Path(path)
        content = read_regular_file(self.path, MAX_MODEL_BYTES, ModelError, "a model")
        if not has_tflite_identifier(content):
            raise ModelError(
                f"{self.path} is not a TFLite model (no 'TFL3' identifier at bytes 4..8)"
            )
        self.threads = threads if threads is not None else default_threads()
        interpreter_type, self.backend = interpreter_class()
        try:
            # num_threads is always explicit; the default op resolver applies XNNPACK (and
            # says so on stderr at INFO level for every model: that line is dropped).
            with native_stderr.captured() as native_log:
                self._interpreter = interpreter_type(
                    model_content=content, num_threads=self.threads
                )
                self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as err:
            first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err)
            raise ModelError(f"{self.path} cannot be loaded: {first_line}") from None
        finally:
            native_stderr.pass_on(native_log)
        self._check_signature()
        self.spec = self._read_spec(content).with_fingerprint(fingerprint_bytes(content))
        self._check_spec()

    @property
    def fingerprint(self) -> str:
        return self.spec.fingerprint

    @property
    def input_size(self) -> tuple[int, int]:
        return self.spec.input_size

    def _check_signature(self) -> None:
        inputs = self._interpreter.get_input_details()
        outputs = self._interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelError(
                f"{self.path}: an embedding model has one input and one output, "
                f"found {len(inputs)} and {len(outputs)}"
            )
        self._input, self._output = inputs[0], outputs[0]
        shape = tuple(self._input["shape"])
        if len(shape) != 4 or shape[3] != 3 or len(self._output["shape"]) != 2:
            raise ModelError(
                f"{self.path}: expected input 1xHxWx3 and output 1xD, found "
                f"{'x'.join(map(str, shape))} and {'x'.join(map(str, self._output['shape']))}"
            )
        self._input_dtype = np.dtype(self._input["dtype"])
        self._input_view = self._interpreter.tensor(self._input["index"])
        self._resized = np.empty((shape[1], shape[2], 3), np.uint8)  # embed_bgr's buffer
        self._input_scale, self._input_zero = self._input["quantization"]
        self._output_scale, self._output_zero = self._output["quantization"]

    def _read_spec(self, content: bytes) -> ModelSpec:
        try:
            embedded = read_metadata(content).get(SPEC_METADATA_NAME)
        except ModelError as err:
            raise ModelError(f"{self.path}: {err}") from None
        try:
            if embedded is not None:
                return ModelSpec.from_json(embedded)
            sidecar = spec_sidecar_path(self.path)
            if sidecar.exists():
                return ModelSpec.load(sidecar)
        except ModelError as err:
            raise ModelError(f"{self.path}: {err}") from None
        _, height, width, _ = (int(v) for v in self._input["shape"])
        quantized = self._input_dtype == np.uint8 and self._output_scale != 0
        return ModelSpec(
            height,
            width,
            int(self._output["shape"][1]),
            "unknown",
            "int8" if quantized else "float32",
        )

    def _check_spec(self) -> None:
        _, height, width, _ = (int(v) for v in self._input["shape"])
        size = int(self._output["shape"][1])
        spec = self.spec
        if (spec.input_height, spec.input_width, spec.embedding_size) != (height, width, size):
            raise ModelError(
                f"{self.path}: its spec says input {spec.input_height}x{spec.input_width} and "
                f"embedding {spec.embedding_size}, the tensors say {height}x{width} and {size}"
            )

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """Centre-crop and resize an H x W x 3 uint8 RGB image to the model's input tensor."""
        resized = center_crop_resize(image, self.input_size)
        if self._input_dtype == np.uint8:
            if (self._input_scale, self._input_zero) not in ((1.0, 0), (0.0, 0)):
                q = np.rint(resized / self._input_scale + self._input_zero)
                resized = np.clip(q, 0, 255).astype(np.uint8)
            return resized[np.newaxis]
        if self._input_dtype == np.float32:
            return resized.astype(np.float32)[np.newaxis]
        raise ModelError(f"{self.path}: unsupported input type {self._input_dtype}")

    def embed_bgr(self, frame: np.ndarray) -> np.ndarray:
        """``embed`` of a camera's BGR frame (or region), without per-frame copies.

        Crops, resizes the BGR pixels straight into the model's input size and swaps the
        channels into the interpreter's own input buffer: the same tensor as ``prepare`` of
        the RGB image (a channel swap commutes with a per-channel resize), minus the full-size
        colour conversion and ``set_tensor``'s copy.
        """
        if (self._input_scale, self._input_zero) not in ((1.0, 0), (0.0, 0)):
            return self.embed(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        height, width = self.input_size
        top, left, crop_h, crop_w = center_crop_box(frame.shape[0], frame.shape[1], height, width)
        crop = frame[top : top + crop_h, left : left + crop_w]
        if (crop_h, crop_w) != (height, width):
            crop = cv2.resize(crop, (width, height), dst=self._resized, interpolation=LINEAR)
        # The view must not outlive this statement: the interpreter refuses to run while it does.
        if self._input_dtype == np.uint8:
            cv2.cvtColor(crop, cv2.COLOR_BGR2RGB, dst=self._input_view()[0])
        else:
            np.copyto(self._input_view()[0], cv2.cvtColor(crop, cv2.COLOR_BGR2RGB))
        self._interpreter.invoke()
        return self.finish(self._interpreter.get_tensor(self._output["index"])[0])

    def invoke(self, tensor: np.ndarray) -> np.ndarray:
        """Run the interpreter on a prepared input; return the raw output row (a copy)."""
        self._interpreter.set_tensor(self._input["index"], tensor)
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output["index"])[0].copy()

    def finish(self, raw: np.ndarray) -> np.ndarray:
        """Dequantise a raw output row if needed and L2-normalise it in float32."""
        vector = raw.astype(np.float32)
        if raw.dtype != np.float32 and self._output_scale:
            vector = (vector - self._output_zero) * np.float32(self._output_scale)
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm > 0 else vector

    def embed(self, image: np.ndarray) -> np.ndarray:
        """The L2-normalised float32 embedding of an H x W x 3 uint8 RGB image."""
        return self.finish(self.invoke(self.prepare(image)))

    def embed_many(self, images) -> np.ndarray:
        """Stack the embeddings of several images into an N x D float32 matrix."""
        rows = [self.embed(image) for image in images]
        if not rows:
            return np.zeros((0, self.spec.embedding_size), np.float32)
        return np.stack(rows)
