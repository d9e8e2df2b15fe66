"""benchmarks/compare_recipes: a finished run whose recipe has moved is named, not reused."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from compare_recipes import stale_run

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


def test_a_run_not_yet_trained_is_not_stale(tmp_path):
    assert stale_run(_train(tmp_path / "new" / "run")) is None


def test_a_recipe_that_fixes_epochs_ignores_the_step_default(tmp_path):
    run = _finished_run(tmp_path, finetune_epochs=30, finetune_steps=400)
    train = [*_train(run), "--finetune-epochs", 30]
    assert stale_run(train) is None
    assert stale_run([*train[:-1], 20]) == "finetune_epochs=30 (recipe: 20)"
