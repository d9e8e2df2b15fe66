"""The committed golden files for the Java core equal a fresh run of their generator,
and Python itself agrees with them (the Java suite checks the same files)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from itemrec.edge_runtime.errors import GalleryError
from itemrec.edge_runtime.gallery_bin import read_gallery_bin

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "android_demo/core/src/test/resources/golden"
SCRIPT = ROOT / "scripts/make_android_golden.py"


def files_under(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_committed_golden_files_equal_a_fresh_regeneration(tmp_path):
    subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path / "golden")], check=True)
    fresh, committed = files_under(tmp_path / "golden"), files_under(GOLDEN)
    assert sorted(committed) == sorted(fresh)
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"stale golden files (run {SCRIPT.name}): {stale}"
    assert 20_000 < sum(map(len, fresh.values())) < 300_000


def read_tsv(name: str) -> list[dict[str, str]]:
    header, *rows = (GOLDEN / name).read_text(encoding="utf-8").splitlines()
    return [dict(zip(header.split("\t"), row.split("\t"), strict=True)) for row in rows]


def test_golden_gallery_reads_back_with_the_expected_matches():
    gallery = read_gallery_bin(GOLDEN / "gallery.bin")
    queries = np.fromfile(GOLDEN / "queries.f32", dtype="<f4").reshape(-1, gallery.dim)
    # As EmbeddingModel.finish: the zero and the NaN query stay as they are.
    norms = np.linalg.norm(queries, axis=1, keepdims=True)
    queries = np.divide(queries, norms, out=queries.copy(), where=norms > 0)
    scores = queries @ gallery.vectors.T
    for row in read_tsv("matches.tsv"):
        q, item = int(row["query"]), int(row["item"])
        assert gallery.codes[item] == row["code"]
        best = scores[q, gallery.item_index == item].max()
        assert best == pytest.approx(float(row["score"]), abs=1e-6)
    for row in read_tsv("decisions.tsv"):
        known = row["best_score"] != "none" and float(row["best_score"]) >= gallery.threshold
        assert (row["result"] != "unknown") == known


@pytest.mark.parametrize("row", read_tsv("invalid.tsv"), ids=lambda row: row["file"])
def test_python_refuses_each_golden_invalid_file_for_the_stated_reason(row):
    with pytest.raises(GalleryError, match=row["keyword"]):
        read_gallery_bin(GOLDEN / "invalid" / row["file"])
