"""Configuration precedence and the resume guard."""

import json

import pytest

from itemrec.edge_runtime.errors import InputError, ModelError
from itemrec.train.config import check_resumable, load_config_file, resolve_config
from itemrec.train.run_dir import RunDir


def test_defaults_then_file_then_command_line(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"data": "d", "out": "o", "batch_size": 16, "center_lambda": 0.01}))
    config = resolve_config(load_config_file(path), {"batch_size": 8})
    assert config.batch_size == 8 and config.center_lambda == 0.01
    assert config.frozen_epochs is None and config.finetune_epochs is None  # from the steps
    # Fine-tuning warms up, is clipped and guarded; the backbone never outpaces the head.
    assert config.warmup_fraction > 0 and config.clip_norm > 0 and config.collapse_guard
    assert 0 < config.backbone_lr_scale <= 1
    assert config.center_alpha == 0.5
    assert not config.flip and "flip" not in config.augmentation_steps


def test_bad_configs_are_refused(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"data": "d", "learning_rate": 1}))
    with pytest.raises(InputError, match="unknown config keys learning_rate"):
        load_config_file(path)
    with pytest.raises(InputError, match="no data directory"):
        resolve_config({}, {"out": "o"})
    with pytest.raises(InputError, match="unknown loss 'magnet'"):
        resolve_config({}, {"data": "d", "out": "o", "loss": "magnet"})
    with pytest.raises(InputError, match="unknown augmentation.*mirror"):
        resolve_config({}, {"data": "d", "out": "o", "augmentations": "crop,mirror"})
    with pytest.raises(InputError, match="warmup_fraction"):
        resolve_config({}, {"data": "d", "out": "o", "warmup_fraction": 1.0})
    assert (
        resolve_config({}, {"data": "d", "out": "o", "augmentations": "none"}).augmentation_steps
        == ()
    )


def test_resuming_with_another_config_is_refused(tmp_path):
    config = resolve_config({}, {"data": "d", "out": str(tmp_path)})
    run_dir = RunDir(tmp_path)
    check_resumable(run_dir, config)  # a new run directory: fine
    run_dir.write_json(run_dir.config, config.to_dict())
    check_resumable(run_dir, config)  # same config: fine
    changed = resolve_config({}, {"data": "d", "out": str(tmp_path), "batch_size": 4})
    with pytest.raises(InputError, match=r"different configuration \(batch_size\)"):
        check_resumable(run_dir, changed)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: __import__("os").mkfifo(p), "not a regular file"),  # would block forever
        (lambda p: p.write_bytes('{"epochs": "ü"}'.encode("latin-1")), "cannot read the config"),
        (lambda p: p.write_text("[" * 100_000), "cannot read the config"),
    ],
    ids=["fifo", "latin-1", "nested"],
)
def test_an_unreadable_config_file_is_one_input_error(tmp_path, make, message):
    path = tmp_path / "config.json"
    make(path)
    with pytest.raises(InputError, match=message):
        load_config_file(path)


def test_a_hand_edited_run_config_is_refused_when_resuming(tmp_path):
    run = RunDir(tmp_path)
    run.config.write_text("[1, 2, 3]")
    with pytest.raises(ModelError, match="config.json: expected a JSON object"):
        check_resumable(run, resolve_config({}, {"data": "x", "out": str(tmp_path)}))


def test_a_run_with_fixed_epochs_resumes_after_the_step_default_moved(tmp_path):
    run_dir = RunDir(tmp_path)
    fixed = {"data": "d", "out": str(tmp_path), "finetune_epochs": 0}
    saved = {**resolve_config({}, fixed).to_dict(), "finetune_steps": 400}  # an older default
    run_dir.write_json(run_dir.config, saved)
    check_resumable(run_dir, resolve_config({}, fixed))  # the steps never applied
    with pytest.raises(InputError, match=r"\(finetune_epochs, finetune_steps\)"):
        check_resumable(run_dir, resolve_config({}, {"data": "d", "out": str(tmp_path)}))


def test_a_run_from_before_whitening_reads_as_unwhitened(tmp_path):
    run_dir = RunDir(tmp_path)
    given = {"data": "d", "out": str(tmp_path)}
    saved = resolve_config({}, given).to_dict()
    del saved["whitening"]  # config.json of a run trained before the key existed
    run_dir.write_json(run_dir.config, saved)
    check_resumable(run_dir, resolve_config({}, {**given, "whitening": 0.0}))
    with pytest.raises(InputError, match=r"\(whitening\)"):
        check_resumable(run_dir, resolve_config({}, given))
    with pytest.raises(InputError, match="whitening must be in"):
        resolve_config({}, {**given, "whitening": 1.5})
