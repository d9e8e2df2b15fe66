"""itemrec-convert's refusals: one line, the path named, a non-zero exit, nothing written."""

from __future__ import annotations

import json
import shutil
import zipfile

import numpy as np
from click.testing import CliRunner

from itemrec.convert.cli import main
from itemrec.edge_runtime.errors import ExitCode
from itemrec.train.run_dir import RunDir, load_run

QUICK = ["--verify-images", "10", "--latency-runs", "2"]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_one_line_error(result, code, *fragments):
    assert result.exit_code == code, result.output
    errors = [line for line in result.output.splitlines() if "itemrec-convert: error" in line]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def test_a_folder_that_is_not_a_run(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    result = invoke(tmp_path, "-o", tmp_path / "m.tflite")
    assert_one_line_error(result, ExitCode.BAD_MODEL, str(tmp_path), "not a training run")
    assert not (tmp_path / "m.tflite").exists()


def test_a_run_whose_custom_layer_is_unknown(tiny_run, tmp_path):
    broken = tmp_path / "run"
    shutil.copytree(tiny_run, broken, ignore=shutil.ignore_patterns(RunDir.model.name))
    path = RunDir(broken).embedder
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members["config.json"] = members["config.json"].replace(b"L2Normalize", b"L2Missing")
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    result = invoke(broken, "-o", tmp_path / "m.tflite")
    assert_one_line_error(result, ExitCode.BAD_MODEL, str(path), "cannot be loaded")


def test_an_empty_representative_set(tiny_run, tmp_path):
    (tmp_path / "empty" / "item").mkdir(parents=True)
    result = invoke(
        tiny_run,
        "-o",
        tmp_path / "m.tflite",
        "--int8",
        *QUICK,
        "--representative-data",
        tmp_path / "empty",
    )
    assert_one_line_error(result, ExitCode.BAD_INPUT, str(tmp_path / "empty"), "no readable images")
    assert list(tmp_path.glob("*.tflite*")) == [] and list(tmp_path.glob(".*")) == []


def test_an_unwritable_output_path(tiny_run, tmp_path):
    result = invoke(tiny_run, "-o", tmp_path / "missing" / "m.tflite")
    assert_one_line_error(
        result, ExitCode.BAD_INPUT, str(tmp_path / "missing" / "m.tflite"), "cannot write"
    )
    result = invoke(tiny_run, "-o", tmp_path)
    assert_one_line_error(result, ExitCode.BAD_INPUT, str(tmp_path), "is a directory")


def test_a_model_below_the_threshold_is_not_written_unless_forced(tiny_run, tmp_path):
    output = tmp_path / "m.tflite"
    result = invoke(tiny_run, "-o", output, *QUICK, "--min-cosine", "1.5")
    assert_one_line_error(result, ExitCode.BAD_MODEL, str(output), "NOT written")
    report = json.loads((tmp_path / "m.report.json").read_text())
    assert not report["passed"] and not report["written"]
    assert "cosine mean" in report["failures"][0]
    assert not output.exists() and not (tmp_path / "m.spec.json").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["m.report.json"]  # no temp file left

    forced = invoke(tiny_run, "-o", output, *QUICK, "--min-cosine", "1.5", "--force")
    assert forced.exit_code == 0, forced.output
    assert output.exists() and (tmp_path / "m.spec.json").exists()


def test_pruning_with_qat_is_refused(tiny_run, tmp_path):
    result = invoke(tiny_run, "-o", tmp_path / "m.tflite", "--qat", "--prune", "0.5")
    assert_one_line_error(result, ExitCode.BAD_INPUT, "--prune with --qat is not supported")
    assert list(tmp_path.iterdir()) == []


def collapsed_run(tiny_run, tmp_path):
    """A copy of the tiny run whose features collapsed, as a diverged fine-tuning leaves them:
    its hidden layer outputs one constant (kernel 0, bias 1), so every image has one embedding.
    """
    run = tmp_path / "collapsed"
    shutil.copytree(tiny_run, run)
    embedder = load_run(run).embedder
    fc = embedder.get_layer("fc")
    kernel, bias = fc.get_weights()
    fc.set_weights([np.zeros_like(kernel), np.ones_like(bias)])
    embedder.save(RunDir(run).embedder)
    return run


def test_a_collapsed_model_is_refused_and_says_why_unless_forced(tiny_run, tmp_path):
    run, output = collapsed_run(tiny_run, tmp_path), tmp_path / "m.tflite"
    result = invoke(run, "-o", output, *QUICK)
    assert_one_line_error(
        result,
        ExitCode.BAD_MODEL,
        str(output),
        "NOT written",
        "degenerate embeddings",
        "rank-1 0.0 % is at chance level",
        "--force",
    )
    report = json.loads((tmp_path / "m.report.json").read_text())
    # The conversion itself is faithful: only the degeneracy fails it.
    assert report["verification"]["cosine_mean"] > 0.999
    assert report["verification"]["embedding_variance_keras"] < 1e-9
    assert len(report["degenerate"]) == 2 and report["failures"] == report["degenerate"]
    assert not output.exists()

    forced = invoke(run, "-o", output, *QUICK, "--force")
    assert forced.exit_code == 0, forced.output
    assert output.exists()


def test_the_trained_tiny_run_is_not_degenerate(tiny_run, tmp_path):
    result = invoke(tiny_run, "-o", tmp_path / "m.tflite", *QUICK)
    assert result.exit_code == 0, result.output
    verification = json.loads((tmp_path / "m.report.json").read_text())["verification"]
    report = json.loads((tmp_path / "m.report.json").read_text())
    assert report["degenerate"] == []
    assert verification["embedding_variance_keras"] > 0.05
    assert verification["rank1_keras"] > verification["rank1_chance"]
