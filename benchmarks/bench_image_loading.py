"""JPEG verdicts and their cost: motion photos accepted, truncated photos refused.

``load_image`` refuses a JPEG when libjpeg-turbo, decoding it strictly at 1/8 scale, reports
corrupt or missing data (``simplejpeg``); before, a trailer heuristic ("an end-of-image
marker after the last start-of-scan") refused valid motion photos and accepted truncated
photos that happen to end in ``FF D9``. On photo-like JPEGs made from scikit-image's sample
pictures (phone sizes and settings: 1.5-12 MP, quality 75-95, 4:2:0 and 4:4:4, baseline and
progressive, EXIF orientation), this counts:

* motion photos (a video after the photo, as Pixel and Samsung phones write them)
  accepted by ``load_image`` and by the old heuristic;
* truncated photos (cut at random points in the scan, as is and with ``FF D9`` appended)
  refused by each;
* on 12 MP photos, the time of the strict check against OpenCV's decode alone (their ratio
  is the verdict's cost) and of ``load_image`` (check, decode, EXIF, BGR to RGB), interleaved,
  medians.

    python benchmarks/bench_image_loading.py [--photos 20] [--cuts 10] [--repeats 7]

Writes ``benchmarks/results/image_loading.json`` and ``image_loading.md``.
"""

from __future__ import annotations

import io
import json
import statistics
import time
from pathlib import Path

import click
import cv2
import numpy as np
import simplejpeg
from PIL import Image
from skimage import data as samples

from itemrec.edge_runtime.errors import ImageLoadError
from itemrec.edge_runtime.images import load_image

RESULTS = Path(__file__).resolve().parent / "results"
PICTURES = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry")
SIZES = ((1600, 1200), (2560, 1920), (3264, 2448), (4000, 3000))


def photo(index: int, rng) -> bytes:
    """A photo-sized JPEG from a sample picture: enlarged, with sensor-like noise."""
    picture = getattr(samples, PICTURES[index % len(PICTURES)])()
    width, height = SIZES[index % len(SIZES)]
    image = cv2.resize(picture[:, :, :3], (width, height), interpolation=cv2.INTER_CUBIC)
    noisy = image.astype(np.int16) + rng.normal(0, 4, image.shape).astype(np.int16)
    options = {
        "quality": int(rng.integers(75, 96)),
        "subsampling": 0 if index % 3 == 0 else 2,  # 4:4:4 or 4:2:0
        "progressive": index % 4 == 1,
    }
    if index % 5 == 2:
        exif = Image.Exif()
        exif[0x0112] = 6
        options["exif"] = exif.tobytes()
    buffer = io.BytesIO()
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(buffer, "JPEG", **options)
    return buffer.getvalue()


def motion_photo(jpeg: bytes, style: str, rng) -> bytes:
    """``jpeg`` followed by a (random) MP4, as a Pixel ("google") or a Samsung phone writes it."""
    video = rng.integers(0, 256, int(rng.integers(150_000, 400_000)), dtype=np.uint8).tobytes()
    mp4 = b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom" + len(video).to_bytes(4, "big") + b"mdat" + video
    if style == "google":
        return jpeg + mp4
    return jpeg + b"MotionPhoto_Data" + mp4 + b"SEFH\x6b\0\0\0" + b"\0" * 24 + b"SEFT"


def old_heuristic_accepts(data: bytes) -> bool:
    """The end-marker check ``load_image`` used before: FF D9 somewhere after the last FF DA."""
    last_scan = data.rfind(b"\xff\xda")
    return last_scan > 0 and data.find(b"\xff\xd9", last_scan) > 0


def accepted(data: bytes) -> bool:
    try:
        load_image(data)
    except ImageLoadError:
        return False
    return True


def truncations(jpeg: bytes, cuts: int, rng) -> list[bytes]:
    start = jpeg.index(b"\xff\xda") + 64
    points = np.sort(rng.integers(start, len(jpeg) - 16, cuts))
    return [jpeg[:p] for p in points] + [jpeg[:p] + b"\xff\xd9" for p in points]


@click.command()
@click.option("--photos", default=20, show_default=True, help="Photos (each: 2 motion photos).")
@click.option("--cuts", default=10, show_default=True, help="Cut points per photo.")
@click.option("--repeats", default=7, show_default=True, help="Timing repeats per 12 MP photo.")
def main(photos, cuts, repeats):
    """Count JPEG verdicts and time them; write results/image_loading.json and .md."""
    rng = np.random.default_rng(0)
    jpegs = [photo(i, rng) for i in range(photos)]
    motion = [motion_photo(j, style, rng) for j in jpegs for style in ("google", "samsung")]
    cut = [t for j in jpegs for t in truncations(j, cuts, rng)]
    ends_ffd9 = [t for t in cut if t.endswith(b"\xff\xd9")]
    twelve_mp = [j for i, j in enumerate(jpegs) if SIZES[i % len(SIZES)] == (4000, 3000)][:3]
    timings = {"load_image": [], "opencv_decode": [], "strict_check": []}
    for jpeg in twelve_mp:
        buffer = np.frombuffer(jpeg, np.uint8)
        functions = {
            "load_image": lambda jpeg=jpeg: load_image(jpeg),
            "opencv_decode": lambda b=buffer: cv2.imdecode(b, cv2.IMREAD_COLOR),
            "strict_check": lambda jpeg=jpeg: simplejpeg.decode_jpeg(
                jpeg, "GRAY", min_height=1, min_width=1
            ),
        }
        for _ in range(repeats):  # interleaved: load on the shared machine hits all alike
            for name, function in functions.items():
                start = time.perf_counter()
                function()
                timings[name].append(time.perf_counter() - start)
    ms = {name: round(statistics.median(values) * 1e3, 1) for name, values in timings.items()}
    result = {
        "photos": photos,
        "motion_photos": len(motion),
        "motion_accepted_load_image": sum(map(accepted, motion)),
        "motion_accepted_old_heuristic": sum(map(old_heuristic_accepts, motion)),
        "valid_accepted_load_image": sum(map(accepted, jpegs)),
        "truncated": len(cut),
        "truncated_refused_load_image": len(cut) - sum(map(accepted, cut)),
        "truncated_refused_old_heuristic": len(cut) - sum(map(old_heuristic_accepts, cut)),
        "truncated_ending_ffd9": len(ends_ffd9),
        "truncated_ffd9_refused_load_image": len(ends_ffd9) - sum(map(accepted, ends_ffd9)),
        "truncated_ffd9_refused_old_heuristic": len(ends_ffd9)
        - sum(map(old_heuristic_accepts, ends_ffd9)),
        "ms_12mp": ms,
        "ratio_strict_check_over_opencv_decode": round(ms["strict_check"] / ms["opencv_decode"], 2),
        "simplejpeg": simplejpeg.__version__,
        "opencv": cv2.__version__,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "image_loading.json").write_text(json.dumps(result, indent=1) + "\n")
    (RESULTS / "image_loading.md").write_text(markdown(result))
    click.echo(markdown(result))


def markdown(r: dict) -> str:
    ms = r["ms_12mp"]
    return (
        f"JPEG verdicts on {r['photos']} photo-like JPEGs (simplejpeg {r['simplejpeg']}, "
        f"OpenCV {r['opencv']}).\n\n"
        "| files | load_image (libjpeg's strict verdict) | old end-marker heuristic |\n"
        "|---|---:|---:|\n"
        f"| valid photos accepted | {r['valid_accepted_load_image']} / {r['photos']} | |\n"
        f"| motion photos accepted | {r['motion_accepted_load_image']} / {r['motion_photos']} "
        f"| {r['motion_accepted_old_heuristic']} / {r['motion_photos']} |\n"
        f"| truncated photos refused | {r['truncated_refused_load_image']} / {r['truncated']} "
        f"| {r['truncated_refused_old_heuristic']} / {r['truncated']} |\n"
        f"| ... of them ending in FF D9 | {r['truncated_ffd9_refused_load_image']} / "
        f"{r['truncated_ending_ffd9']} | {r['truncated_ffd9_refused_old_heuristic']} / "
        f"{r['truncated_ending_ffd9']} |\n\n"
        f"12 MP photo, median ms: load_image {ms['load_image']}, OpenCV decode alone "
        f"{ms['opencv_decode']}, the strict 1/8 check alone {ms['strict_check']}: the verdict "
        f"costs {r['ratio_strict_check_over_opencv_decode']} of a decode.\n"
    )


if __name__ == "__main__":
    main()
