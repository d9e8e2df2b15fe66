"""Camera capture, the live loop's shutdown and exit codes, and enrolment from the camera."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner
from edge_helpers import INT8_MODEL, write_video

from itemrec.edge_runtime.camera import FrameGrabber, center_roi, roi_box
from itemrec.edge_runtime.cli import main
from itemrec.edge_runtime.errors import CameraError, ExitCode
from itemrec.edge_runtime.gallery import Gallery
from itemrec.edge_runtime.interpreter import EmbeddingModel


def test_roi_box_and_source_parsing():
    assert roi_box(480, 640, 0.6) == (96, 128, 288, 384)
    assert roi_box(5, 5, 1.0) == (0, 0, 5, 5)
    frame = np.arange(10 * 10).reshape(10, 10)
    np.testing.assert_array_equal(center_roi(frame, 0.5), frame[2:7, 2:7])
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        roi_box(10, 10, 0)


def test_newest_frame_wins_and_an_ended_video_fails_after_retries(tmp_path, reference):
    # Frame k is a flat grey of value 10*k: which frame we got is readable from its pixels.
    frames = [np.full((32, 32, 3), 10 * k, np.uint8) for k in range(20)]
    video = write_video(tmp_path / "grey.avi", frames)
    grabber = FrameGrabber(str(video), retries=1, retry_delay=0.05, realtime=False)
    with grabber:
        time.sleep(1.0)  # the reader runs on alone; everything but the last frame is dropped
        newest = grabber.latest(timeout=1)
        assert abs(int(newest.mean()) - 190) <= 3
        with pytest.raises(CameraError, match="stopped delivering frames"):
            grabber.latest(timeout=2)
    with pytest.raises(CameraError, match="cannot open camera"):
        FrameGrabber(str(tmp_path / "missing.avi"))


def test_sigterm_stops_the_loop_cleanly(tmp_path, db, reference):
    video = write_video(tmp_path / "long.avi", [reference["images"][0]] * 300, fps=30)
    command = [
        sys.executable,
        "-m",
        "itemrec.edge_runtime.cli",
        "run",
        "--model",
        str(INT8_MODEL),
        "--db",
        str(db),
        "--camera",
        str(video),
        "--headless",
        "--roi",
        "1",
    ]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = json.loads(proc.stdout.readline())  # the loop is running
    assert first["event"] == "ready"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "Traceback" not in err


def test_cli_exit_codes_and_messages(tmp_path, db):
    runner = CliRunner()
    args = ["run", "--model", str(INT8_MODEL), "--db", str(db)]
    result = runner.invoke(main, [*args, "--camera", str(tmp_path / "none.avi"), "--headless"])
    assert result.exit_code == ExitCode.CAMERA_UNAVAILABLE
    assert "cannot open camera" in result.output
    # No GUI (the headless wheel) or no display: a clear hint instead of a crash.
    result = runner.invoke(
        main, [*args, "--camera", "0"], env={"DISPLAY": None, "WAYLAND_DISPLAY": None}
    )
    assert result.exit_code == ExitCode.BAD_INPUT and "use --headless" in result.output
    assert "no GUI (the headless wheel)" in result.output and "edge-gui" in result.output


def test_enrol_from_the_camera(tmp_path, db, reference):
    video = write_video(tmp_path / "new.avi", [reference["images"][3]] * 60, fps=30)
    result = CliRunner().invoke(
        main,
        [
            "enroll",
            "--model",
            str(INT8_MODEL),
            "--db",
            str(db),
            "--code",
            "D",
            "--name",
            "Dates",
            "--camera",
            str(video),
            "--shots",
            "3",
            "--interval",
            "0.1",
            "--roi",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    with Gallery.open(db) as g:
        items = {i.code: i for i in g.items()}
        assert items["D"].representatives == 3 and items["D"].name == "Dates"
        d_vectors = g.vectors().matrix[-3:]
    expected = EmbeddingModel(INT8_MODEL).embed(reference["images"][3])
    assert (d_vectors @ expected).min() > 0.999
