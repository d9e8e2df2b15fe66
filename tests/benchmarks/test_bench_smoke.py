"""The benchmarks' device code runs, on tiny inputs, against today's runtime API.

``bench_live`` and ``bench_lookup`` once broke unnoticed until a full ``make bench``: the loop
had moved from ``embed`` to ``embed_bgr``, and galleries open read-only unless asked to write.
Each runs here as a subprocess (the benchmarks pin CPUs and set thread variables at import),
and nothing is written under ``benchmarks/results``.
"""

import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "edge_runtime"))

import numpy as np
from edge_helpers import FIXTURES, INT8_MODEL, write_video

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "benchmarks"


def run_python(*args: str, cwd: Path = ROOT) -> str:
    proc = subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_live_worker_times_the_loop(tmp_path):
    images = np.load(FIXTURES / "tiny_reference.npz")["images"]
    video = write_video(tmp_path / "camera.avi", list(images) * 8)  # 64 frames
    out = run_python(
        str(BENCHMARKS / "bench_live.py"), "--worker", str(INT8_MODEL), "1", str(video),
        "--frames", "20",
    )  # fmt: skip
    row = json.loads(out.splitlines()[-1])
    assert row["frames_per_s"] > 0 and row["raw_invoke_ms"] > 0
    assert 0 < row["embed_ms"] < 1e3


GALLERY_AT_SCALE = """
import json, pathlib, sys
import numpy as np
import bench_lookup
result = bench_lookup.gallery_at_scale(
    2000, 16, 20, 5, np.random.default_rng(0), pathlib.Path(sys.argv[1])
)
print(json.dumps(result))
"""


def test_lookup_at_scale_imports_changes_and_reloads(tmp_path):
    out = run_python("-c", GALLERY_AT_SCALE, str(tmp_path), cwd=BENCHMARKS)
    result = json.loads(out.splitlines()[-1])
    assert result["items"] == 2000 and result["import_items_per_s"] > 0
    assert result["refresh_after_one_change_ms"]["p50"] > 0 and result["full_reload_ms"] > 0


IDLE_STUDY = """
import json, pathlib, sys
import time
import idle_study
waited = {}
for how in idle_study.WAITS:
    t0 = time.perf_counter(); idle_study.wait(how); waited[how] = time.perf_counter() - t0
row = idle_study.study(pathlib.Path(sys.argv[1]), 1, 10)
print(json.dumps({"row": row, "table": idle_study.table([row]), "waited": waited}))
"""


def test_idle_study_times_each_call_after_each_wait():
    out = json.loads(run_python("-c", IDLE_STUDY, str(INT8_MODEL), cwd=BENCHMARKS).splitlines()[-1])
    row = out["row"]
    for call in ("invoke", "identify", "product"):
        for wait in ("back to back", "after sleep", "after spin"):
            assert 0 < row[f"{call} {wait}"] < 1e3, (call, wait)
    assert len(out["table"]) == 2 + 3  # header, rule, one line per call
    waited = out["waited"]
    assert waited["back to back"] < 1e-3
    assert waited["after sleep"] > 0.03 and 1 / 30 <= waited["after spin"] < 0.1


def test_enrolment_augmentation_with_a_given_model(tmp_path):
    out = tmp_path / "enroll_augment"
    run_python(
        str(BENCHMARKS / "bench_enroll_augment.py"), "--data", "sample",
        "--model", f"sample={INT8_MODEL}", "--results-name", str(out),
    )  # fmt: skip
    rows = json.loads(out.with_suffix(".json").read_text())
    assert [r["views"] for r in rows] == [0, 1, 2, 4, 8]
    assert all(r["items"] == 50 and r["representatives"] == 50 * (1 + r["views"]) for r in rows)
    sizes = [r["gallery_kb"] for r in rows]
    assert sizes == sorted(sizes) and sizes[-1] > sizes[0]
    assert all(0 <= r["rank1"] <= r["rank5"] <= 1 and 0 <= r["open_set_eer"] <= 1 for r in rows)
    assert str(INT8_MODEL) in out.with_suffix(".md").read_text()


def test_enrolment_augmentation_refuses_a_model_for_an_unknown_set():
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_enroll_augment.py"), "--data", "sample",
         "--model", "devdata=nowhere.tflite"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2 and "expected DATA=TFLITE" in proc.stderr
