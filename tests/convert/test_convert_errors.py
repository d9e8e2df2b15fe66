"""itemrec-convert's refusals: one line, the path named, a non-zero exit, nothing written."""

from __future__ import annotations

import json
import shutil
import zipfile

from click.testing import CliRunner

from itemrec.convert.cli import main
from itemrec.edge_runtime.errors import ExitCode
from itemrec.train.run_dir import RunDir

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
