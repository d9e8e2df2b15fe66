"""benchmarks/compare_recipes: a finished run whose recipe has moved is named, not reused;
the optional latency column times each recipe's int8 model once; recorded runs fill only the
pairs missing under build/; the table holds the recipes asked for."""

import json
import shutil
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "edge_runtime"))

import compare_recipes
from commands import show
from compare_recipes import commands_for, int8_latency, recorded_runs, stale_run, table
from edge_helpers import INT8_MODEL

from itemrec.train.config import TrainConfig


def _finished_run(tmp_path, **changes) -> Path:
    run = tmp_path / "loss-arcface-s0" / "run"
    run.mkdir(parents=True)
    saved = {**TrainConfig().to_dict(), "loss": "arcface", "seed": 0, "out": "/elsewhere"}
    (run / "config.json").write_text(json.dumps({**saved, **changes}))
    return run


def _train(run: Path) -> list:
    return ["itemrec-train", "--data", "d", "--out", run, "--seed", 0, "--loss", "arcface"]


def test_a_run_with_todays_defaults_is_reused(tmp_path):
    assert stale_run(_train(_finished_run(tmp_path))) is None


def test_a_run_from_older_defaults_names_the_fields_that_moved(tmp_path):
    run = _finished_run(tmp_path, image_size=96, finetune_steps=400)
    why = stale_run(_train(run))
    assert why == (
        f"finetune_steps=400 (recipe: {TrainConfig.finetune_steps}), "
        f"image_size=96 (recipe: {TrainConfig.image_size})"
    )


def test_a_run_from_before_whitening_reads_as_unwhitened(tmp_path):
    run = _finished_run(tmp_path)
    saved = json.loads((run / "config.json").read_text())
    del saved["whitening"]
    (run / "config.json").write_text(json.dumps(saved))
    assert stale_run(_train(run)) == f"whitening=0.0 (recipe: {TrainConfig.whitening})"
    assert stale_run([*_train(run), "--whitening", 0]) is None


def test_a_run_not_yet_trained_is_not_stale(tmp_path):
    assert stale_run(_train(tmp_path / "new" / "run")) is None


def test_a_recipe_that_fixes_epochs_ignores_the_step_default(tmp_path):
    run = _finished_run(tmp_path, finetune_epochs=30, finetune_steps=400)
    train = [*_train(run), "--finetune-epochs", 30]
    assert stale_run(train) is None
    assert stale_run([*train[:-1], 20]) == "finetune_epochs=30 (recipe: 20)"


def test_the_latency_column_times_each_recipes_int8_model_once(tmp_path):
    rows = []
    for recipe, seed in (("size-160", 0), ("size-160", 1), ("lite1", 0)):
        run = tmp_path / f"{recipe}-s{seed}"
        run.mkdir()
        shutil.copy(INT8_MODEL, run / "model_int8.tflite")
        for kind, rank1 in (("Keras", 0.5 + seed / 10), ("int8", 0.4 + seed / 10)):
            figures = {"rank1": rank1, "rank5": 0.9, "mAP": 0.6, "open_set_eer": 0.3}
            rows.append({"recipe": recipe, "seed": seed, "model": kind, **figures})
    latency = int8_latency(rows, tmp_path)
    assert sorted(latency) == ["lite1", "size-160"]
    assert all(0 < ms < 1000 for ms in latency.values())
    lines = table(rows, "size-160", latency)
    assert lines[0].endswith("| int8 ms, 1 thread |")
    cells = {tuple(line.split(" | ")[:2]): line.split(" | ")[-1] for line in lines[2:]}
    assert cells[("| lite1", "Keras")] == "- |"
    assert cells[("| size-160", "int8")] == f"{latency['size-160']:.1f} |"
    assert "| 2 | 0.450 +- 0.071 |" in lines[-1]  # size-160 int8: two seeds
    assert "int8 ms" not in table(rows, "size-160")[0]


def test_recorded_runs_fill_the_pairs_missing_under_build_and_must_match_the_recipe(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(compare_recipes, "RESULTS", tmp_path)
    out, recipe = tmp_path / "devdata", "size-160-ft1600"
    saved = {"rows": [], "commands": {}}
    for seed in (0, 1):
        for kind in ("Keras", "int8"):
            saved["rows"].append({"recipe": recipe, "seed": seed, "model": kind, "rank1": 0.5})
        steps = commands_for("devdata", recipe, seed, out)
        saved["commands"].update({name: show(c) for name, c in steps.items()})
    (tmp_path / "earlier.json").write_text(json.dumps(saved))
    (out / f"{recipe}-s0" / "eval").mkdir(parents=True)
    (out / f"{recipe}-s0" / "eval" / "cmc.json").write_text("{}")  # seed 0 ran here

    rows, commands = recorded_runs(("earlier",), "devdata", (recipe, "lite1"), [0, 1, 2], out)
    assert [(r["seed"], r["model"], r["recorded"]) for r in rows] == [
        (1, "Keras", "earlier"),
        (1, "int8", "earlier"),
    ]
    assert sorted(commands) == [f"{recipe}-s1-{step}" for step in ("convert", "eval", "train")]
    assert all(c.endswith("  # recorded in earlier") for c in commands.values())

    saved["commands"][f"{recipe}-s1-train"] += " --loss arcface"
    (tmp_path / "earlier.json").write_text(json.dumps(saved))
    with pytest.raises(click.ClickException, match=f"{recipe}-s1 in earlier ran other commands"):
        recorded_runs(("earlier",), "devdata", (recipe,), [1], out)
    with pytest.raises(click.ClickException, match="--recorded later: no results file"):
        recorded_runs(("later",), "devdata", (recipe,), [1], out)


def test_recipes_keep_the_defaults_they_were_measured_at_and_their_records_still_match(
    tmp_path, monkeypatch
):
    trained = {name: flags for name, flags in compare_recipes.RECIPES.items() if flags is not None}
    assert trained.pop("new") == []  # the defaults as they are
    assert all(set(compare_recipes.MEASURED_AT) <= set(flags) for flags in trained.values())
    jpeg = compare_recipes.RECIPES["jpeg"]
    assert jpeg[jpeg.index("--augmentations") + 1] == "crop,lighting,jpeg"  # its own, not pinned
    assert jpeg[-4:] == ["--whitening", 0, "--backbone-lr-scale", 0.3]

    monkeypatch.setattr(compare_recipes, "RESULTS", tmp_path)
    out = tmp_path / "devdata"
    # as recorded before whitening, and before the pair became the default: no pinned flag
    pinned = " --whitening 0 --backbone-lr-scale 0.3 --augmentations crop,lighting"
    for recipe, suffix in (("size-160-ft1600", pinned), ("jpeg", " --backbone-lr-scale 0.3")):
        steps = {name: show(c) for name, c in commands_for("devdata", recipe, 0, out).items()}
        before = steps[f"{recipe}-s0-train"].removesuffix(suffix)
        assert before != steps[f"{recipe}-s0-train"]
        row = {"recipe": recipe, "seed": 0, "model": "Keras", "rank1": 0.5}
        recorded = {"rows": [row], "commands": {**steps, f"{recipe}-s0-train": before}}
        (tmp_path / "before.json").write_text(json.dumps(recorded))
        rows, _ = recorded_runs(("before",), "devdata", (recipe,), [0], out)
        assert [r["rank1"] for r in rows] == [0.5]

    steps = {name: show(c) for name, c in commands_for("devdata", "new", 0, out).items()}
    recorded = {"rows": [{**row, "recipe": "new"}], "commands": steps}  # trained unwhitened then
    (tmp_path / "before.json").write_text(json.dumps(recorded))
    with pytest.raises(click.ClickException, match="new-s0 in before ran other commands"):
        recorded_runs(("before",), "devdata", ("new",), [0], out)


def test_the_table_holds_the_recipes_asked_for_and_keeps_recorded_exit_codes(tmp_path, monkeypatch):
    monkeypatch.setattr(compare_recipes, "ROOT", tmp_path)
    monkeypatch.setattr(compare_recipes, "RESULTS", tmp_path / "results")
    figures = {"seed_protocol": {"mean": [0.5] * 10}, "mAP": 0.6, "open_set": {"eer": 0.3}}
    for recipe in ("jpeg", "size-160-ft1600", "lite1"):  # lite1 ran too, but is not asked for
        cmc = compare_recipes.cmc_file(tmp_path / "build/compare/devdata", recipe, 0)
        cmc.parent.mkdir(parents=True)
        cmc.write_text(json.dumps({"models": {"run": figures, "model_int8.tflite": figures}}))
    (tmp_path / "results").mkdir()
    (tmp_path / "results/t.json").write_text(json.dumps({"exit_codes": {"jpeg-s0-train": 0}}))

    argv = ["--set", "devdata", "-r", "jpeg", "--reference", "size-160-ft1600", "--seeds", "0"]
    argv += ["--table-only", "--results-name", "t"]
    result = CliRunner().invoke(compare_recipes.main, argv)
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "results/t.json").read_text())
    assert sorted({r["recipe"] for r in saved["rows"]}) == ["jpeg", "size-160-ft1600"]
    assert len(saved["rows"]) == 4 and saved["exit_codes"] == {"jpeg-s0-train": 0}
    assert not any("lite1" in c for c in saved["commands"])
