"""The collapse guard: a fine-tuning rate far too high is caught, undone and cut."""

import logging

import numpy as np
import pytest

from itemrec.train.callbacks import embedding_spread
from itemrec.train.config import resolve_config
from itemrec.train.keras_api import tf
from itemrec.train.model import embedding_model
from itemrec.train.run import train_run
from itemrec.train.run_dir import RunDir


def test_spread_is_zero_for_a_constant_and_large_for_distinct_vectors():
    assert embedding_spread(np.tile([[0.6, 0.8]], (5, 1))) == pytest.approx(0.0)
    assert embedding_spread(np.eye(4)) == pytest.approx(0.75)  # 1 - ||mean||^2 = 1 - 4/16


def _config(class_folders, out, **changes):
    return resolve_config(
        {},
        {
            "data": str(class_folders),
            "out": str(out),
            "image_size": 32,  # ImageNet Lite0: real features, so collapse is visible
            "frozen_epochs": 2,
            "finetune_epochs": 3,
            "batch_size": 5,
            "val_classes": 0,
            "feature_views": 1,
            "scatter_classes": 0,
            "clip_norm": 0,  # clipping alone would tame this rate
            **changes,
        },
    )


def _final_spread(run: RunDir, class_folders) -> float:
    """The spread the trained network ends with (the guard's view: before any whitening)."""
    embedder = embedding_model(tf.keras.models.load_model(run.model, safe_mode=True))
    from itemrec.train.data import evaluation_dataset, readable_class_folders

    paths, labels = readable_class_folders(class_folders).paths_and_labels
    return embedding_spread(embedder.predict(evaluation_dataset(paths, labels, 32, 16), verbose=0))


@pytest.mark.slow
def test_a_far_too_high_rate_triggers_the_guard(class_folders, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="itemrec.train")
    run = RunDir(tmp_path / "guarded")
    train_run(_config(class_folders, run.path, finetune_lr=300.0))
    history = run.read_history()
    finetune = [e for e in history if e["phase"] == "finetune"]
    restored = [e for e in finetune if e["collapse_restored"] == 1.0]
    assert restored, [(e["loss"], e["embedding_spread"]) for e in finetune]
    assert finetune[-1]["lr_cut"] <= 0.1  # the rate was cut at least once
    assert any("collapse guard: epoch" in r.getMessage() for r in caplog.records)
    good = [e["embedding_spread"] for e in history if e["collapse_restored"] == 0.0]
    assert _final_spread(run, class_folders) > 0.5 * min(good)  # the good weights came back

    # The same rate without the guard destroys the features: the test above is not vacuous.
    unguarded = RunDir(tmp_path / "unguarded")
    config = _config(class_folders, unguarded.path, finetune_lr=300.0, collapse_guard=False)
    train_run(config)
    final = unguarded.read_history()[-1]
    assert not np.isfinite(final["loss"]) or _final_spread(unguarded, class_folders) < 0.02


def test_the_cached_phase_watches_the_spread_the_embedder_has(class_folders, tmp_path):
    # With cached features the guard embeds the probes' backbone features through the head;
    # with 15 images and no validation classes every image is a probe, so the last frozen
    # epoch's spread is the saved embedder's spread over all of them.
    run = RunDir(tmp_path / "cached")
    train_run(_config(class_folders, run.path, finetune_epochs=0, cache_features=True))
    frozen = [e for e in run.read_history() if e["phase"] == "frozen"]
    assert len(frozen) == 2 and frozen[-1]["embedding_spread"] > 0.01
    assert frozen[-1]["embedding_spread"] == pytest.approx(
        _final_spread(run, class_folders), abs=1e-4
    )
