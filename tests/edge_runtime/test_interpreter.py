"""``EmbeddingModel`` on the real tiny models with the real LiteRT interpreter."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest
from edge_helpers import FP32_MODEL, INT8_MODEL

from itemrec.edge_runtime import native_stderr
from itemrec.edge_runtime.errors import ModelError
from itemrec.edge_runtime.geometry import center_crop_resize
from itemrec.edge_runtime.interpreter import EmbeddingModel, default_threads
from itemrec.edge_runtime.spec import ModelSpec, sidecar_path


@pytest.mark.parametrize("path, min_cosine", [(FP32_MODEL, 0.99999), (INT8_MODEL, 0.99)])
def test_embeddings_match_the_keras_model(path, min_cosine, reference):
    model = EmbeddingModel(path, threads=1)
    embeddings = model.embed_many(reference["images"])
    assert embeddings.dtype == np.float32 and embeddings.shape == (8, 16)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-6)
    cosines = np.sum(embeddings * reference["embeddings"], axis=1)
    assert cosines.min() > min_cosine, cosines


def test_spec_comes_from_the_metadata_and_the_fingerprint_from_the_bytes():
    model = EmbeddingModel(INT8_MODEL, threads=2)
    assert model.spec.backbone == "tiny_conv"
    assert model.spec.quantization == "int8"
    assert model.input_size == (32, 32)
    assert model.fingerprint == hashlib.sha256(INT8_MODEL.read_bytes()).hexdigest()
    assert model.threads == 2 and model.backend == "ai_edge_litert"
    assert EmbeddingModel(FP32_MODEL).threads == default_threads() == len(os.sched_getaffinity(0))


def without_embedded_spec(tmp_path, source):
    """A copy whose ``itemrec_spec`` metadata entry is renamed (same length), so not found."""
    data = source.read_bytes()
    assert data.count(b"itemrec_spec") == 1
    path = tmp_path / "bare.tflite"
    path.write_bytes(data.replace(b"itemrec_spec", b"itemrec_xxxx"))
    return path


def test_spec_falls_back_to_the_sidecar_then_to_the_tensor_shapes(tmp_path):
    path = without_embedded_spec(tmp_path, INT8_MODEL)
    derived = EmbeddingModel(path).spec
    assert (derived.backbone, derived.quantization, derived.input_size) == (
        "unknown",
        "int8",
        (32, 32),
    )
    assert derived.embedding_size == 16
    ModelSpec(32, 32, 16, "from_sidecar", "int8").save(sidecar_path(path))
    assert EmbeddingModel(path).spec.backbone == "from_sidecar"
    ModelSpec(64, 64, 16, "from_sidecar", "int8").save(sidecar_path(path))
    with pytest.raises(ModelError, match="spec says input 64x64"):
        EmbeddingModel(path)


def test_bad_files_get_one_clear_error(tmp_path):
    text = tmp_path / "notes.tflite"
    text.write_text("hello, I am not a model")
    with pytest.raises(ModelError, match=r"notes.tflite is not a TFLite model .*TFL3"):
        EmbeddingModel(text)
    data = FP32_MODEL.read_bytes()
    for length in (8, 2000, len(data) // 2, len(data) - 100):
        cut = tmp_path / f"cut{length}.tflite"
        cut.write_bytes(data[:length])
        with pytest.raises(ModelError, match=f"cut{length}.tflite"):
            EmbeddingModel(cut)
    with pytest.raises(ModelError, match="missing.tflite: No such file"):
        EmbeddingModel(tmp_path / "missing.tflite")


def test_int8_output_is_dequantised_then_normalised():
    model = EmbeddingModel(INT8_MODEL)
    raw = np.zeros(16, np.int8)
    raw[:2] = (96, -72)  # scale 1/128, zero point 0: (0.75, -0.5625) -> norm 0.9375
    vector = model.finish(raw)
    np.testing.assert_allclose(vector[:2], (0.8, -0.6), atol=1e-7)
    assert not vector[2:].any() and vector.dtype == np.float32


def test_prepare_crops_the_centre_to_the_input_size(reference):
    model = EmbeddingModel(FP32_MODEL)
    wide = np.zeros((32, 48, 3), np.uint8)
    wide[:, 8:40] = reference["images"][0]
    tensor = model.prepare(wide)
    assert tensor.dtype == np.float32 and tensor.shape == (1, 32, 32, 3)
    np.testing.assert_array_equal(tensor[0], reference["images"][0])
    uint8_tensor = EmbeddingModel(INT8_MODEL).prepare(np.full((50, 40, 3), 7, np.uint8))
    assert uint8_tensor.dtype == np.uint8 and uint8_tensor.shape == (1, 32, 32, 3)
    np.testing.assert_array_equal(
        uint8_tensor[0], center_crop_resize(np.full((50, 40, 3), 7, np.uint8), (32, 32))
    )


@pytest.mark.parametrize("path", [FP32_MODEL, INT8_MODEL])
@pytest.mark.parametrize("shape", [(48, 64), (64, 48), (32, 32), (100, 37)])
def test_embed_bgr_is_embed_of_the_rgb_image(path, shape):
    """The live loop's zero-copy path gives the very same embedding as the contract's."""
    rng = np.random.default_rng(shape[0])
    bgr = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    model = EmbeddingModel(path, threads=1)
    expected = model.embed(bgr[:, :, ::-1].copy())
    for _ in range(2):  # the reused buffers carry nothing over
        np.testing.assert_array_equal(model.embed_bgr(bgr), expected)
    view = np.zeros((80, 120, 3), np.uint8)[10:58, 20:84]  # a region of a frame, not contiguous
    view[:] = bgr[:48, :64] if shape == (48, 64) else 0
    np.testing.assert_array_equal(model.embed_bgr(view), model.embed(view[:, :, ::-1].copy()))


def test_loading_a_model_says_nothing_on_stderr(capfd):
    """LiteRT's 'INFO: Created TensorFlow Lite XNNPACK delegate' line (native, descriptor 2)
    is dropped; other native lines would pass."""
    EmbeddingModel(INT8_MODEL, threads=1)
    assert capfd.readouterr().err == ""


def test_native_lines_other_than_info_are_passed_on(capfd):
    with native_stderr.captured() as lines:
        os.write(2, b"INFO: chatter\nERROR: something real\n")
    assert capfd.readouterr().err == ""  # nothing leaked while captured
    native_stderr.pass_on(lines)
    assert capfd.readouterr().err == "ERROR: something real\n"
