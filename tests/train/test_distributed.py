"""Two replicas (two logical CPU devices) train exactly like one: center loss and ArcFace."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("two_replicas.py")


@pytest.mark.slow
def test_two_replicas_match_one():
    run = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=300)
    lines = [line for line in run.stdout.splitlines() if line.startswith("RESULT ")]
    assert run.returncode == 0 and lines, run.stderr[-3000:]
    report = json.loads(lines[-1][len("RESULT ") :])
    assert report["replicas"] == 2
    assert report["weights_changed"] > 1e-3 and report["centers_moved"] > 1e-2
    assert report["weights_diff"] < 1e-4
    assert report["centers_diff"] < 1e-4
    assert report["loss_diff"] < 1e-4
    assert report["update_vs_numpy"] < 1e-5
    # ArcFace's class weights, clipping and the backbone's lower rate: exact across replicas.
    assert report["arcface_weights_changed"] > 1e-4 and report["arcface_class_weights_moved"] > 1e-4
    assert report["arcface_weights_diff"] < 1e-5
    assert report["arcface_class_weights_diff"] < 1e-5
    assert report["arcface_loss_diff"] < 1e-4
