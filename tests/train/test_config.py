"""Configuration precedence and the resume guard."""

import json

import pytest

from train.config import check_resumable, load_config_file, resolve_config
from train.errors import TrainError


def test_defaults_then_file_then_command_line(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"data": "d", "out": "o", "batch_size": 16, "center_lambda": 0.01}))
    config = resolve_config(load_config_file(path), {"batch_size": 8})
    assert config.batch_size == 8 and config.center_lambda == 0.01
    assert config.frozen_epochs == 20 and config.finetune_epochs == 30  # the seed's schedule
    assert config.frozen_lr == 1e-3 and config.finetune_lr == 1e-4 and config.center_alpha == 0.5


def test_bad_configs_are_refused(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"data": "d", "learning_rate": 1}))
    with pytest.raises(TrainError, match="unknown config keys learning_rate"):
        load_config_file(path)
    with pytest.raises(TrainError, match="no data directory"):
        resolve_config({}, {"out": "o"})
    with pytest.raises(TrainError, match="unknown loss"):
        resolve_config({}, {"data": "d", "out": "o", "loss": "arcface"})


def test_resuming_with_another_config_is_refused(tmp_path):
    config = resolve_config({}, {"data": "d", "out": str(tmp_path)})
    (tmp_path / "config.json").write_text(config.to_json())
    check_resumable(tmp_path, config)  # same config: fine
    changed = resolve_config({}, {"data": "d", "out": str(tmp_path), "batch_size": 4})
    with pytest.raises(TrainError, match=r"different configuration \(batch_size\)"):
        check_resumable(tmp_path, changed)
