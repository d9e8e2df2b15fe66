"""``itemrec-edge`` as real processes: OpenCV's pixel limit, Ctrl-C, a killed build, lost camera."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from edge_helpers import INT8_MODEL, ITEM_IMAGES, build_args, write_png, write_video

from itemrec.edge_runtime import MAX_IMAGE_PIXELS
from itemrec.edge_runtime.errors import ExitCode
from itemrec.edge_runtime.gallery import Gallery

EDGE = str(Path(sys.executable).with_name("itemrec-edge"))

# A real grey PNG of 9000 x 9000 pixels (81 M, above itemrec's 64 M, below OpenCV's default
# 2^30), compressed row by row to 80 KB.
DECODE_DIRECTLY = """
import struct, sys, zlib, importlib
importlib.import_module(sys.argv[1])
import cv2, numpy as np
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
packer = zlib.compressobj(9)
rows = b"".join(packer.compress(b"\\0" * 9001) for _ in range(9000)) + packer.flush()
png = b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 9000, 9000, 8, 0, 0, 0, 0))
png += chunk(b"IDAT", rows) + chunk(b"IEND", b"")
try:
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    print("decoded" if image is not None and image.shape == (9000, 9000) else "failed")
except cv2.error:
    print("refused by OpenCV")
"""


@pytest.mark.parametrize(
    "module, verdict",
    [
        ("itemrec.edge_runtime.images", "refused by OpenCV"),
        ("itemrec.edge_runtime.launch", "refused by OpenCV"),  # the console scripts' start
        ("json", "decoded"),  # the control: without itemrec, OpenCV allows 2^30 pixels
    ],
)
def test_importing_itemrec_sets_opencvs_pixel_limit_before_cv2_loads(module, verdict):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCV_")}
    proc = subprocess.run(
        [sys.executable, "-c", DECODE_DIRECTLY, module],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.stdout.strip() == verdict, proc.stderr
    assert MAX_IMAGE_PIXELS < 9000 * 9000 < 2**30


@pytest.fixture
def gallery_setup(tmp_path, reference):
    images = tmp_path / "images"
    for code, index in ITEM_IMAGES.items():
        write_png(images / code / "front.png", reference["images"][index])
    db = tmp_path / "g.db"
    assert subprocess.run([EDGE, *map(str, build_args(images, db))], timeout=120).returncode == 0
    return images, db


def test_ctrl_c_at_any_moment_ends_quietly(gallery_setup, tmp_path, reference):
    """SIGINT while Python imports OpenCV, loads the model, opens the camera, recognises live or
    identifies files: never a traceback; once the command runs, exit 0.

    A SIGINT while Python itself starts (importing ``site``, or the console script importing
    ``itemrec.edge_runtime.launch``, a few milliseconds) ends in Python's own traceback: no
    itemrec code runs yet, so those rounds are not judged. In the start-up rounds only the
    traceback is judged: a SIGINT there can also land in click's argument parsing ("Aborted!",
    exit 1, seen once in CI), in LiteRT's import (which then reads as "no TFLite interpreter
    installed", exit 4) or in OpenCV's first reads (a lost camera, exit 6), each a window of a few
    milliseconds (found by sweeping the delay in 10 ms steps). The last two rounds wait for the
    command's first output instead of a delay: timed rounds alone all landed after the end of
    the job once the machine was fast enough (CI: 1000 identifications took 0.6 s).
    """
    images, db = gallery_setup
    video = write_video(tmp_path / "ten_seconds.avi", [reference["images"][0]] * 300)
    run = [EDGE, "run", "--headless", "--model", INT8_MODEL, "--db", db, "--camera", video]
    run = list(map(str, run))
    for delay in (0.1, 0.2, 0.4, 0.8):
        proc = _start(run, stdout=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
        if not _in_python_start_up(stderr):
            assert "Traceback" not in stderr, (delay, stderr)

    # Live: the loop stops as on SIGTERM, as a service would.
    assert _interrupt_after_first_line(run) == (ExitCode.OK, "")
    # A batch job: one line says it was cut short.
    identify = [EDGE, "identify", "--model", str(INT8_MODEL), "--db", str(db)]
    identify += [str(images / "A" / "front.png")] * 5000
    assert _interrupt_after_first_line(identify) == (ExitCode.OK, "itemrec-edge: interrupted")


def _interrupt_after_first_line(command: list[str]) -> tuple[int, str]:
    """SIGINT once ``command`` prints its first line; its exit status and stderr."""
    proc = _start(command, stdout=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout.readline(), "the command printed nothing"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    return proc.returncode, stderr.strip()


def _start(command: list[str], **options) -> subprocess.Popen:
    """Start ``command`` (stderr piped, text) with SIGINT's default action: a shell without
    job control starts background jobs with SIGINT ignored (``cmd &`` in a script), and an
    ignored SIGINT is inherited, so the command would never see the Ctrl-C sent to it."""
    return subprocess.Popen(
        command,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        **options,
    )


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:  # checkpointed and removed between glob and stat
        return 0


def _in_python_start_up(stderr: str) -> bool:
    traceback = stderr.split("Traceback (most recent call last):")[-1]
    return "init_import_site" in stderr or (
        "import edge_main" in traceback and "launch.py" not in traceback
    )


def test_a_killed_build_leaves_no_gallery_and_the_rerun_works(tmp_path, reference):
    images = tmp_path / "images"
    for index in range(40):  # 40 items of 5 images
        for copy in range(5):
            write_png(images / f"I{index:02d}" / f"{copy}.png", reference["images"][index % 8])
    db = tmp_path / "g.db"
    proc = subprocess.Popen([EDGE, *map(str, build_args(images, db))], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not any(_size(p) for p in tmp_path.glob(".g.db.*.tmp-wal")):
        assert proc.poll() is None, "the build finished before it could be killed"
        assert time.monotonic() < deadline, "the build never started enrolling"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)  # items are being enrolled into the temporary file
    assert proc.wait(timeout=10) == -signal.SIGKILL
    assert not db.exists(), "a killed build left a gallery under its name"
    rerun = subprocess.run(
        [EDGE, *map(str, build_args(images, db))], capture_output=True, text=True, timeout=300
    )
    assert rerun.returncode == 0, rerun.stderr
    with Gallery.open(db) as gallery:
        assert len(gallery.items()) == 40 and gallery.integrity_ok()


def test_a_lost_camera_is_exit_6_in_enroll_and_in_run(gallery_setup, tmp_path, reference):
    images, db = gallery_setup
    video = write_video(tmp_path / "two_frames.avi", [reference["images"][0]] * 2)
    common = ["--model", str(INT8_MODEL), "--db", str(db), "--camera", str(video)]
    enroll = [EDGE, "enroll", *common, "--code", "V", "--shots", "5", "--interval", "0"]
    run = [EDGE, "run", *common, "--headless", "--retries", "0"]
    for args in (enroll, run):
        proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
        assert proc.returncode == ExitCode.CAMERA_LOST, proc.stderr
        assert "Traceback" not in proc.stderr and str(video) in proc.stderr
