"""End to end on a device without TensorFlow: build a gallery, identify, run live, headless.

Every ``itemrec-edge`` command runs in a subprocess where importing tensorflow, tf_keras or
keras raises ImportError and is logged; the test asserts the log stays empty.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from edge_helpers import (
    INT8_MODEL,
    ITEM_IMAGES,
    UNKNOWN_IMAGE,
    build_args,
    write_png,
    write_video,
)

from itemrec.edge_runtime.errors import ExitCode
from itemrec.edge_runtime.events import DEFAULT_STABLE_FRAMES
from itemrec.edge_runtime.interpreter import EmbeddingModel

BLOCKER = Path(__file__).resolve().parent / "no_tensorflow"


@pytest.fixture
def edge(tmp_path):
    """Run ``itemrec-edge ARGS`` without TensorFlow; return the CompletedProcess."""
    log = tmp_path / "tensorflow_imports.log"
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(BLOCKER), os.getcwd()]),
        ITEMREC_IMPORT_LOG=str(log),
    )

    def run(*args, timeout=60):
        proc = subprocess.run(
            [sys.executable, "-m", "itemrec.edge_runtime.cli", *map(str, args)],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert not log.exists(), f"tried to import {log.read_text()}"
        return proc

    return run


def test_the_blocker_blocks(edge, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(BLOCKER))
    proc = subprocess.run(
        [sys.executable, "-c", "import tensorflow"], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 1 and "blocked" in proc.stderr


def test_build_identify_and_run_live_without_tensorflow(
    edge, tmp_path, class_folders, names_csv, reference
):
    db = tmp_path / "gallery.db"
    built = edge(*build_args(class_folders, db, "--names", names_csv, "--threads", 1))
    assert built.returncode == 0, built.stderr
    assert "3 items, 6 representatives, 1 skipped" in built.stdout
    assert "broken.jpg" in built.stderr  # the unreadable image is reported by name

    # identify: scores equal the numpy dot products of the same model's embeddings.
    model = EmbeddingModel(INT8_MODEL, threads=1)
    gallery_vectors = {code: model.embed(reference["images"][i]) for code, i in ITEM_IMAGES.items()}
    probe = write_png(tmp_path / "probe.png", reference["images"][UNKNOWN_IMAGE])
    known = write_png(tmp_path / "known.png", reference["images"][ITEM_IMAGES["B"]], scale=4)
    proc = edge("identify", "--model", INT8_MODEL, "--db", db, "--json", "-k", 3, probe, known)
    assert proc.returncode == 0, proc.stderr
    unknown_answer, known_answer = map(json.loads, proc.stdout.splitlines())
    q = model.embed(reference["images"][UNKNOWN_IMAGE])
    expected = sorted(((float(q @ v), c) for c, v in gallery_vectors.items()), reverse=True)
    assert [m["code"] for m in unknown_answer["top"]] == [c for _, c in expected]
    np.testing.assert_allclose(
        [m["score"] for m in unknown_answer["top"]], [s for s, _ in expected], atol=1e-5
    )
    assert known_answer["code"] == "B" and known_answer["name"] == "Bread"
    assert known_answer["score"] == pytest.approx(1.0, abs=1e-5)

    # A threshold between the unknown item's best score and 1 makes it "unknown".
    threshold = (expected[0][0] + 1.0) / 2
    assert edge("gallery", "set-threshold", "--db", db, threshold).returncode == 0
    proc = edge("identify", "--model", INT8_MODEL, "--db", db, "--json", probe, known)
    unknown_answer, known_answer = map(json.loads, proc.stdout.splitlines())
    assert unknown_answer["code"] is None and unknown_answer["threshold"] == threshold
    assert known_answer["code"] == "B"

    # Live, headless, on a video: A for 15 frames, the unknown item, then C; then it ends.
    frames = (
        [reference["images"][ITEM_IMAGES["A"]]] * 15
        + [reference["images"][UNKNOWN_IMAGE]] * 15
        + [reference["images"][ITEM_IMAGES["C"]]] * 15
    )
    video = write_video(tmp_path / "shelf.avi", frames, fps=30)
    proc = edge(
        "run",
        "--model",
        INT8_MODEL,
        "--db",
        db,
        "--camera",
        video,
        "--headless",
        "--roi",
        1.0,
        "--retries",
        2,
    )
    assert proc.returncode == ExitCode.CAMERA_LOST, proc.stderr
    assert "stopped delivering frames (2 retries" in proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [e["event"] for e in events] == ["ready", "scan", "scan", "camera_lost"]
    scans = events[1:3]
    assert [e["code"] for e in scans] == ["A", "C"]  # the unknown item is no scan
    assert scans[0]["name"] == "Apple juice" and scans[0]["score"] > 0.999
    # Confirmed on its DEFAULT_STABLE_FRAMES-th frame.
    assert scans[0]["frames"] == scans[0]["frame"] == DEFAULT_STABLE_FRAMES
    assert "stopped delivering frames" in events[-1]["reason"]

    # --max-frames stops on purpose: exit 0.
    proc = edge(
        *("run", "--model", INT8_MODEL, "--db", db, "--camera", video, "--headless"),
        *("--roi", 1.0, "--max-frames", 5),
    )
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(line)["event"] for line in proc.stdout.splitlines()] == ["ready", "scan"]
