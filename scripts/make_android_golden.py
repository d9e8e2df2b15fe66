"""Write the golden files that the Android app's plain-Java core is tested against.

Python is the reference: the Java `core` (android_demo/core) must read the same
`gallery.bin`, refuse the same broken files, rank the same items with the same scores
and preprocess the same images to the same tensors (within a stated tolerance). Every
file is deterministic (seeded), so `tests/android/test_golden_fresh.py` can check that
the committed copies equal a fresh run.

    python scripts/make_android_golden.py   # rewrites android_demo/core/src/test/resources/golden

Files (all little-endian):
  gallery.bin                     a small gallery (docs/gallery-format.md)
  queries.f32                     raw query embeddings, float32 [query, dim], NOT normalised;
                                  the last two are degenerate (all zero, all NaN)
  matches.tsv                     query, rank, item, code, score  (top-3, best vector per item)
  decisions.tsv                   query, result (code or "unknown"), best score ("none": no match)
  images.tsv                      name, height, width, target h/w, crop top/left/height/width
  images/<name>.argb              the input image, int32 0xAARRGGBB, row-major
  images/<name>.rgb               geometry.center_crop_resize of it, uint8 HWC RGB
  frames.tsv + frames/<name>.rgb  camera frames: an image tiled to the sensor's size, the clockwise
                                  rotation that makes it upright, the model input made of the
                                  upright frame and the crop box the model sees in it
  tensors.tsv + tensors/<name>.*  model tensors: .in what the device has (RGB image or raw output),
                                  .out what EmbeddingModel.prepare / .finish make of it
  invalid.tsv + invalid/<f>.bin   broken galleries and the word their error must contain

The degenerate queries and the tensors go through the device runtime's own code
(``EmbeddingModel.finish``/``prepare`` on a stand-in without an interpreter, ``Lookup``).
"""

from __future__ import annotations

import hashlib
import shutil
import struct
import zlib
from pathlib import Path

import click
import numpy as np

from itemrec.edge_runtime.gallery import GalleryVectors
from itemrec.edge_runtime.gallery_bin import HEADER, read_gallery_bin, write_gallery_bin
from itemrec.edge_runtime.geometry import center_crop_box, center_crop_resize
from itemrec.edge_runtime.interpreter import EmbeddingModel
from itemrec.edge_runtime.lookup import Lookup
from itemrec.edge_runtime.spec import ModelSpec

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "android_demo/core/src/test/resources/golden"
SEED = 20261107
TOP_K = 3
DIM = 16
THRESHOLD = 0.6
MARGIN = 1e-3  # no two ranked scores (nor the best score and the threshold) closer than this
ITEMS = (  # code, name, representative count
    ("4006381333931", "Stabilo Boss highlighter, yellow", 2),
    ("5000112637922", "Cola 0.5 l", 1),
    ("7610400010351", "Crème fraîche 200 g", 3),
    ("4901085191238", "緑茶 500 ml", 1),
    ("SKU-0005", "Äpfel Elstar 1 kg", 2),
    ("SKU-0006", "", 1),
)
IMAGE_CASES = (  # name, source (height, width), target (height, width)
    ("noise_37x53", (37, 53), (24, 32)),
    ("stripes_64x120", (64, 120), (32, 32)),
    ("upscale_13x9", (13, 9), (20, 28)),
    ("photo_48x64", (48, 64), (24, 24)),
    ("halfway_5x13", (5, 13), (2, 5)),  # crop width round(12.5) == 12 (half to even)
    ("identity_24x32", (24, 32), (24, 32)),
)
FRAME_CASES = (  # name, source image, tiles (rows, columns), clockwise rotation, model size
    # A 640x480 CameraX analysis frame of a portrait phone: 480 sensor rows of 640, rotated 90.
    ("camera_480x640_r90", "photo_48x64", (10, 10), 90, (224, 224)),
    ("noise_r0", "noise_37x53", (1, 1), 0, (24, 32)),
    ("noise_r90", "noise_37x53", (1, 1), 90, (24, 32)),
    ("noise_r180", "noise_37x53", (1, 1), 180, (24, 32)),
    ("noise_r270", "noise_37x53", (1, 1), 270, (24, 32)),
)
TENSOR_CASES = (  # name, direction, dtype, (scale, zero point)
    ("in_uint8_plain", "input", "uint8", (1.0, 0)),
    ("in_uint8_unquantised", "input", "uint8", (0.0, 0)),
    ("in_uint8_requantised", "input", "uint8", (2.0, 3)),  # v / 2 + 3: odd v round half to even
    ("in_uint8_clipped", "input", "uint8", (0.5, 10)),  # 2 v + 10 > 255 from v = 123
    ("in_float32", "input", "float32", (0.0, 0)),
    ("out_int8", "output", "int8", (1 / 128, 0)),  # TFLite's L2_NORMALIZATION output
    ("out_uint8", "output", "uint8", (1 / 128, 128)),
    ("out_uint8_unquantised", "output", "uint8", (0.0, 0)),
    ("out_float32", "output", "float32", (0.0, 0)),
    ("out_int8_zero", "output", "int8", (1 / 128, 0)),  # all zero: stays zero, no exception
)


def rank_items(vectors: np.ndarray, item_index: np.ndarray, query: np.ndarray, item_count: int):
    """Return ``[(item, score), ...]`` best first; an item scores its best vector's cosine."""
    unit = query.astype(np.float64) / np.linalg.norm(query.astype(np.float64))
    scores = vectors.astype(np.float64) @ unit
    best = np.full(item_count, -np.inf)
    np.maximum.at(best, item_index, scores)
    order = sorted(range(item_count), key=lambda item: (-best[item], item))
    return [(item, float(best[item])) for item in order if np.isfinite(best[item])]


def make_gallery(rng: np.random.Generator):
    item_index = np.repeat(np.arange(len(ITEMS)), [count for _, _, count in ITEMS])
    vectors = rng.normal(size=(len(item_index), DIM))
    return item_index, vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def is_unambiguous(ranking) -> bool:
    scores = [score for _, score in ranking[: TOP_K + 1]]
    gaps_ok = all(a - b > MARGIN for a, b in zip(scores, scores[1:], strict=False))
    return gaps_ok and abs(scores[0] - THRESHOLD) > MARGIN


def make_queries(rng, vectors, item_index):
    """Queries near a representative (known) and one random (unknown), scaled arbitrarily."""
    plans = [(3, 0.15), (1, 0.15), (5, 0.35), (None, 0.0), (8, 0.6), (0, 0.25)]
    queries, rankings = [], []
    for vector_row, noise in plans:
        while True:
            if vector_row is None:
                candidate = rng.normal(size=DIM)
            else:
                jitter = noise * rng.normal(size=DIM) / np.sqrt(DIM)
                candidate = vectors[vector_row].astype(np.float64) + jitter
            candidate = (candidate * rng.uniform(0.2, 5.0)).astype(np.float32)
            ranking = rank_items(vectors, item_index, candidate, len(ITEMS))
            known = ranking[0][1] >= THRESHOLD
            if is_unambiguous(ranking) and known == (vector_row is not None):
                break
        queries.append(candidate)
        rankings.append(ranking)
    return np.stack(queries), rankings


def device_model(dtype: str, quantization, size) -> EmbeddingModel:
    """An ``EmbeddingModel`` with these tensor details and no interpreter (for prepare/finish)."""
    model = EmbeddingModel.__new__(EmbeddingModel)
    model.path = Path("golden.tflite")
    model.spec = ModelSpec(size[0], size[1], DIM, "golden")
    model._input_dtype = np.dtype(dtype)
    model._input_scale, model._input_zero = quantization
    model._output_scale, model._output_zero = quantization
    return model


def device_decision(stored, query: np.ndarray):
    """What the device runtime answers for a raw float32 output: finish, then look it up."""
    codes, names = list(stored.codes), list(stored.names)
    lookup = Lookup(GalleryVectors(stored.vectors, stored.item_index, codes, names), THRESHOLD)
    embedding = device_model("float32", (0.0, 0), (24, 32)).finish(query)
    identified = lookup.identify(embedding, k=TOP_K)
    return identified.item, identified.matches


def synthetic_image(rng, name: str, height: int, width: int) -> np.ndarray:
    """A seeded RGB test image: smooth ramps plus texture (noise or stripes)."""
    if name.startswith("photo"):
        from skimage import data  # bundled with scikit-image, no download

        return np.ascontiguousarray(data.chelsea()[60 : 60 + height, 150 : 150 + width])
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    ramps = np.stack([255 * x / max(width - 1, 1), 255 * y / max(height - 1, 1), 128 + 0 * x], -1)
    if name.startswith("stripes"):
        texture = 100 * np.sign(np.sin(x * 0.9 + y * 0.3))[..., None]
    else:
        texture = rng.normal(0, 60, size=(height, width, 3))
    return np.clip(np.rint(ramps + texture), 0, 255).astype(np.uint8)


def to_argb(image: np.ndarray) -> np.ndarray:
    rgb = image.astype(np.uint32)
    return (0xFF000000 | (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]).astype("<u4")


def with_crc(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


def invalid_galleries(valid: bytes, item_count: int, vector_count: int):
    """Yield ``(file name, error keyword, bytes)``: one broken gallery per validation rule."""
    body = bytearray(valid[:-4])
    index_offset = len(body) - 4 * vector_count * (DIM + 1)

    magic = bytearray(valid)
    magic[0:8] = b"IRGALLRZ"
    yield "bad_magic.bin", "magic", bytes(magic)

    version = bytearray(body)
    struct.pack_into("<I", version, 8, 2)
    yield "bad_version.bin", "version", with_crc(bytes(version))

    yield "truncated.bin", "truncated", valid[: len(valid) - 10]
    yield "header_only.bin", "truncated", valid[: HEADER.size]
    yield "extra_bytes.bin", "size", with_crc(bytes(body) + b"\0\0\0\0")

    flipped = bytearray(valid)
    flipped[len(valid) - 20] ^= 0x01  # inside the last vector
    yield "bad_crc.bin", "CRC", bytes(flipped)

    index = bytearray(body)
    struct.pack_into("<I", index, index_offset + 4 * (vector_count - 1), item_count)
    yield "bad_index.bin", "index", with_crc(bytes(index))


def write_golden(out: Path) -> None:
    rng = np.random.default_rng(SEED)
    item_index, vectors = make_gallery(rng)
    if out.exists():
        shutil.rmtree(out)
    (out / "images").mkdir(parents=True)
    (out / "invalid").mkdir()
    gallery_path = write_gallery_bin(
        out / "gallery.bin",
        codes=[code for code, _, _ in ITEMS],
        names=[name for _, name, _ in ITEMS],
        item_index=item_index,
        vectors=vectors,
        threshold=THRESHOLD,
        input_size=(24, 32),
        fingerprint_hex=hashlib.sha256(b"itemrec golden model").hexdigest(),
    )
    stored = read_gallery_bin(gallery_path)  # expected scores use the float32 vectors as stored
    queries, rankings = make_queries(rng, stored.vectors, stored.item_index)
    degenerate = np.stack([np.zeros(DIM, np.float32), np.full(DIM, np.nan, np.float32)])
    (out / "queries.f32").write_bytes(np.concatenate([queries, degenerate]).astype("<f4").tobytes())
    matches = ["query\trank\titem\tcode\tscore"]
    decisions = ["query\tresult\tbest_score"]
    for q, ranking in enumerate(rankings):
        for rank, (item, score) in enumerate(ranking[:TOP_K], start=1):
            matches.append(f"{q}\t{rank}\t{item}\t{ITEMS[item][0]}\t{score:.9f}")
        best_item, best = ranking[0]
        result = ITEMS[best_item][0] if best >= THRESHOLD else "unknown"
        item, _ = device_decision(stored, queries[q])
        assert (item.code if item else "unknown") == result, f"query {q}: Lookup disagrees"
        decisions.append(f"{q}\t{result}\t{best:.9f}")
    for q, query in enumerate(degenerate, start=len(queries)):
        item, found = device_decision(stored, query)
        for rank, match in enumerate(found, start=1):
            index = stored.codes.index(match.code)
            matches.append(f"{q}\t{rank}\t{index}\t{match.code}\t{match.score:.9f}")
        best = f"{found[0].score:.9f}" if found else "none"
        decisions.append(f"{q}\t{item.code if item else 'unknown'}\t{best}")
    write_lines(out / "matches.tsv", matches)
    write_lines(out / "decisions.tsv", decisions)

    rows = ["name\theight\twidth\ttarget_height\ttarget_width\ttop\tleft\tcrop_height\tcrop_width"]
    images = {}
    for name, (height, width), (target_h, target_w) in IMAGE_CASES:
        image = images[name] = synthetic_image(rng, name, height, width)
        box = center_crop_box(height, width, target_h, target_w)
        (out / "images" / f"{name}.argb").write_bytes(to_argb(image).tobytes())
        tensor = center_crop_resize(image, (target_h, target_w))
        (out / "images" / f"{name}.rgb").write_bytes(np.ascontiguousarray(tensor).tobytes())
        rows.append("\t".join(map(str, (name, height, width, target_h, target_w, *box))))
    write_lines(out / "images.tsv", rows)
    write_frames(out, images)
    write_tensors(out, rng, images["photo_48x64"])

    invalid = ["file\tkeyword"]
    broken = invalid_galleries(gallery_path.read_bytes(), len(ITEMS), len(item_index))
    for file_name, keyword, data in broken:
        (out / "invalid" / file_name).write_bytes(data)
        invalid.append(f"{file_name}\t{keyword}")
    write_lines(out / "invalid.tsv", invalid)


def write_frames(out: Path, images: dict) -> None:
    """Camera frames: a tiled image in sensor orientation, turned upright as CameraX says."""
    (out / "frames").mkdir()
    rows = [
        "name\tsource\ttiles_y\ttiles_x\trotation\ttarget_height\ttarget_width"
        "\ttop\tleft\tcrop_height\tcrop_width"
    ]
    for name, source, (tiles_y, tiles_x), rotation, (target_h, target_w) in FRAME_CASES:
        sensor = np.tile(images[source], (tiles_y, tiles_x, 1))
        upright = np.ascontiguousarray(np.rot90(sensor, k=-(rotation // 90)))  # clockwise
        tensor = center_crop_resize(upright, (target_h, target_w))
        (out / "frames" / f"{name}.rgb").write_bytes(np.ascontiguousarray(tensor).tobytes())
        box = center_crop_box(upright.shape[0], upright.shape[1], target_h, target_w)
        cells = (name, source, tiles_y, tiles_x, rotation, target_h, target_w, *box)
        rows.append("\t".join(map(str, cells)))
    write_lines(out / "frames.tsv", rows)


def write_tensors(out: Path, rng, image: np.ndarray) -> None:
    """What the device runtime feeds the model for an image, and reads back from raw outputs."""
    (out / "tensors").mkdir()
    rgb = center_crop_resize(image, (24, 24))
    rows = ["name\tdirection\tdtype\tscale\tzero_point\tshape"]
    for name, direction, dtype, quantization in TENSOR_CASES:
        model = device_model(dtype, quantization, rgb.shape[:2])
        if direction == "input":
            before, after = rgb, model.prepare(rgb)  # already at the input size: no resampling
        elif name.endswith("_zero"):
            before = np.zeros(DIM, dtype)
            after = model.finish(before)
        elif dtype == "float32":
            before = rng.normal(0, 3, DIM).astype(np.float32)
            after = model.finish(before)
        else:
            info = np.iinfo(dtype)
            before = rng.integers(info.min, info.max, DIM, endpoint=True).astype(dtype)
            after = model.finish(before)
        (out / "tensors" / f"{name}.in").write_bytes(np.ascontiguousarray(before).tobytes())
        little_endian = after.astype(after.dtype.newbyteorder("<"))
        (out / "tensors" / f"{name}.out").write_bytes(np.ascontiguousarray(little_endian).tobytes())
        shape = "x".join(map(str, after.shape if direction == "input" else (1, DIM)))
        rows.append(
            f"{name}\t{direction}\t{dtype}\t{quantization[0]!r}\t{quantization[1]}\t{shape}"
        )
    write_lines(out / "tensors.tsv", rows)


def write_lines(path: Path, lines) -> None:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8", newline="\n")


@click.command()
@click.option("--out", type=click.Path(path_type=Path), default=DEFAULT_OUT, show_default=True)
def main(out: Path) -> None:
    """Rewrite the golden files for the Java core's tests."""
    write_golden(out)
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    click.echo(f"wrote {out} ({total / 1024:.1f} KiB)")


if __name__ == "__main__":
    main()
