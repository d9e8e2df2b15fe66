"""A run killed mid-epoch and started again continues where it stopped, not from scratch."""

from pathlib import Path

import pytest

from itemrec.train.config import resolve_config
from itemrec.train.keras_api import tf
from itemrec.train.run import train_run
from itemrec.train.run_dir import RunDir


class Crash(tf.keras.callbacks.Callback):
    """Stands in for a kill: raises at the end of batch ``batch`` of epoch ``epoch``."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.epoch, self.batch, self.current = epoch, batch, None

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.current, batch) == (self.epoch, self.batch):
            raise KeyboardInterrupt("killed")


class Spy(tf.keras.callbacks.Callback):
    """Records (phase trainer, epoch, batch) of every batch that runs."""

    def __init__(self):
        super().__init__()
        self.seen, self.epoch = [], None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        self.seen.append((self.epoch, batch))


@pytest.mark.slow
def test_killed_run_resumes(class_folders, tmp_path):
    config = resolve_config(
        {},
        {
            "data": str(class_folders),
            "out": str(tmp_path / "run"),
            "backbone": "efficientnet_lite0",
            "weights": "none",
            "image_size": 32,
            "frozen_epochs": 1,
            "finetune_epochs": 2,
            "batch_size": 3,  # 3 classes x 3 images: 3 batches an epoch
            "val_classes": 2,
            "checkpoint_every": 1,
            "scatter_classes": 0,
        },
    )
    with pytest.raises(KeyboardInterrupt):
        train_run(config, extra_callbacks=[Crash(epoch=2, batch=0)])  # fine-tuning, epoch 2
    run = RunDir(tmp_path / "run")
    before = run.read_history()
    assert [(e["phase"], e["epoch"]) for e in before] == [("frozen", 0), ("finetune", 0)]
    state = run.read_json(run.state)
    assert state["finished_phases"] == ["frozen"]

    spy = Spy()
    summary = train_run(config, extra_callbacks=[spy])
    # The frozen phase is not rerun; fine-tuning continues after its last backed-up batch.
    # Epochs count across phases (fine-tuning starts at global epoch 1), as TensorBoard sees them.
    assert spy.seen == [(2, 1), (2, 2)]
    after = run.read_history()
    assert [(e["phase"], e["epoch"]) for e in after] == [
        ("frozen", 0),
        ("finetune", 0),
        ("finetune", 1),
    ]
    assert after[:2] == before  # the finished epochs are kept as they were
    assert summary["epochs"] == 3 and run.embedder.is_file()
    assert not list(Path(run.backup("finetune")).rglob("*.index"))  # backups cleaned up
