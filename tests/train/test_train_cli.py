"""``itemrec-train``: one-line errors, and real runs that write the whole run directory."""

import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from itemrec.edge_runtime.errors import ExitCode
from itemrec.train.cli import main
from itemrec.train.config import TrainConfig
from itemrec.train.keras_api import tf
from itemrec.train.model import embedding_model
from itemrec.train.run_dir import RunDir

TINY = ["--weights", "none", "--batch-size", "8", "--val-classes", "2"]


def _error(args, code=ExitCode.BAD_INPUT):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == code, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines[-1].startswith("itemrec-train: error: ") and "Traceback" not in result.output
    return lines[-1]


def test_help_lists_the_schedule():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for flag in ("--frozen-epochs", "--finetune-epochs", "--cache-features", "--config"):
        assert flag in result.output


def test_bad_inputs_exit_with_one_line(class_folders, tmp_path):
    assert "not a directory" in _error(["--data", str(tmp_path / "nope"), "--out", "r"])
    (tmp_path / "empty").mkdir()
    assert "no class folders" in _error(["--data", str(tmp_path / "empty"), "--out", "r"])
    assert "unknown backbone 'resnet'" in _error(
        ["--data", str(class_folders), "--out", str(tmp_path / "r"), "--backbone", "resnet"]
    )
    for name in ("1.png", "2.png"):
        (class_folders / "item02" / name).unlink()
    assert "item02 (1)" in _error(["--data", str(class_folders), "--out", str(tmp_path / "r")])
    assert "at least 75x75" in _error(
        [
            "--data",
            str(class_folders),
            "--out",
            str(tmp_path / "r2"),
            "--backbone",
            "inception_v3",
            "--weights",
            "none",
            "--image-size",
            "32",
            "--skip-small-classes",
        ]
    )
    assert "no such weights file" in _error(
        [
            *("--data", str(class_folders), "--out", str(tmp_path / "r3")),
            *("--weights", "absent.pth", "--skip-small-classes"),
        ]
    )


def test_a_corrupt_weights_file_is_a_bad_model(class_folders, tmp_path):
    weights = tmp_path / "lite0.pth"
    weights.write_bytes(b"not a torch file")
    args = ["--data", str(class_folders), "--out", str(tmp_path / "r"), "--weights", str(weights)]
    assert "lite0.pth" in _error(args, ExitCode.BAD_MODEL)


def _check_run_dir(path, epochs, classes):
    run = RunDir(path)
    for file in (
        run.config,
        run.history,
        run.summary,
        run.skipped_txt,
        run.loss_plot,
        run.features_gif,
        run.model,
        run.embedder,
        run.centers,
    ):
        assert file.is_file(), file
    history = run.read_history()
    assert [e["global_epoch"] for e in history] == list(range(epochs))
    assert all(len(e["val_cmc"]) == 2 and "center_loss" in e for e in history)
    assert any(run.logs.rglob("events.out.tfevents*"))
    import itemrec.train.backbones  # noqa: F401  (registers the models' custom layers)

    model = tf.keras.models.load_model(run.model, safe_mode=True)
    assert model.output["logits"].shape[-1] == classes
    embedder = tf.keras.models.load_model(run.embedder, safe_mode=True)
    size = embedder.input_shape[1]
    images = np.random.default_rng(0).uniform(0, 255, (2, size, size, 3)).astype(np.float32)
    vectors = embedder(images).numpy()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Three classes are far too few to whiten 128 dimensions: the export is the network's
    np.testing.assert_allclose(embedding_model(model)(images).numpy(), vectors, atol=1e-5)
    assert run.read_json(run.summary)["whitening"] == {
        "shrink": 0.0,
        "not_whitened": f"{classes} training classes, fewer than 256 (2 per embedding dimension)",
    }
    return run.read_config()


@pytest.mark.slow
def test_efficientnet_lite_run(class_folders, tmp_path):
    run = tmp_path / "run"
    args = [
        "--data",
        str(class_folders),
        "--out",
        str(run),
        "--backbone",
        "efficientnet_lite0",
        "--image-size",
        "32",
        "--frozen-epochs",
        "1",
        "--finetune-epochs",
        "1",
        *TINY,
    ]
    done = subprocess.run(
        [sys.executable, "-m", "itemrec.train.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "done: 2 epochs, 3 classes" in done.stdout
    config = _check_run_dir(run, epochs=2, classes=3)
    assert (
        config["backbone"] == "efficientnet_lite0"
        and config["center_lambda"] == TrainConfig().center_lambda
    )
    assert len(RunDir(run).scatter_frames()) == 2


@pytest.mark.slow
def test_inception_run_on_cached_features(class_folders, tmp_path):
    run = tmp_path / "run"
    args = [
        "--data",
        str(class_folders),
        "--out",
        str(run),
        "--backbone",
        "inception_v3",
        "--image-size",
        "75",
        "--frozen-epochs",
        "3",
        "--finetune-epochs",
        "0",
        "--cache-features",
        "--no-augment",
        "--weights",
        "none",
        "--batch-size",
        "8",
        "--val-classes",
        "0",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    run = RunDir(run)
    history = run.read_history()
    assert [e["global_epoch"] for e in history] == [0, 1, 2] and "val_rank1" not in history[0]
    embedder = tf.keras.models.load_model(run.embedder, safe_mode=True)
    assert embedder.input_shape == (None, 75, 75, 3) and embedder.output_shape == (None, 128)
    centers = np.load(run.centers)
    assert centers.shape == (5, 128) and np.abs(centers).max() > 0  # trained on cached features
    # Figures of the fast cached phase: the first epoch's and, drawn at its end, the last's.
    frames = [path.name for path in run.scatter_frames()]
    assert frames[0] == run.scatter_frame(1).name and frames[-1] == run.scatter_frame(3).name
    assert run.loss_plot.exists() and run.features_gif.exists()
