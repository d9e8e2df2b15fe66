"""Two ``itemrec-train`` worker processes on loopback (``TF_CONFIG``, MultiWorkerMirroredStrategy).

They train exactly like one process on the same global batch, only the chief writes the run
directory, and a cluster that lost a worker mid-epoch finishes the run when restarted.
"""

import collections
import re
import time

import numpy as np
import pytest
from train_helpers import TRAIN_COMMAND, Processes, start_workers, write_class_folders

from itemrec.train.distribute import loopback_workers
from itemrec.train.keras_api import tf
from itemrec.train.run_dir import RunDir

# Each process imports TensorFlow and builds EfficientNet-Lite0 (about 15 s of CPU); on a
# machine shared by many jobs that can take minutes, so this only bounds a hung cluster.
TIMEOUT_S = 300

TINY = [
    *("--backbone", "efficientnet_lite0", "--weights", "none", "--image-size", "32"),
    *("--frozen-lr", "0.05", "--finetune-lr", "0.05", "--dropout", "0", "--no-augment"),
]


def _files(run: RunDir) -> collections.Counter:
    """The run directory's files and folders; TensorBoard's file names hold a time and a pid."""
    names = (str(p.relative_to(run.path)) for p in run.path.rglob("*"))
    return collections.Counter(re.sub(r"tfevents\..*", "tfevents.*", name) for name in names)


def _largest_difference(prefix_a: str, prefix_b: str) -> tuple[float, int]:
    """The largest absolute difference between two ``tf.train.Checkpoint``s' float variables."""
    a, b = tf.train.load_checkpoint(prefix_a), tf.train.load_checkpoint(prefix_b)
    names = sorted(a.get_variable_to_shape_map())
    assert names == sorted(b.get_variable_to_shape_map())
    floats = [n for n in names if np.asarray(a.get_tensor(n)).dtype.kind == "f"]
    largest = max(float(np.abs(a.get_tensor(n) - b.get_tensor(n)).max()) for n in floats)
    return largest, len(floats)


@pytest.mark.slow
def test_two_workers_train_like_one_process_and_only_the_chief_writes(tmp_path):
    # 5 training classes x 3 images, global batch 5: 3 steps of 3 + 2 images. The 6 images
    # of the 2 validation classes end with a batch of 1, which would leave worker 1 without
    # an image (its convolutions fail on an empty batch) if it were not filled up.
    data = write_class_folders(tmp_path / "data", classes=7, per_class=3)
    args = [*TINY, "--data", data, "--frozen-epochs", "0", "--finetune-epochs", "1"]
    args += ["--batch-size", "5"]
    args += ["--val-classes", "2", "--scatter-classes", "2"]
    one, two = RunDir(tmp_path / "one"), RunDir(tmp_path / "two")
    with Processes(tmp_path / "logs") as processes:
        start_workers(processes, loopback_workers(2), [*args, "--out", two.path], tmp_path)
        processes.start("single", [*TRAIN_COMMAND, *args, "--out", one.path])
        for name in ("worker0", "worker1", "single"):
            assert processes.wait(name, TIMEOUT_S) == 0, processes.log(name)[-3000:]
    assert "MultiWorkerMirroredStrategy with 2 replicas" in processes.log("worker1")
    assert "this process is worker 1" in processes.log("worker1")

    # Only the chief wrote the run directory: the same files as one process writes, no
    # worker's temporary folder left inside it, and worker 1's own temporary folder emptied.
    assert _files(two) == _files(one)
    assert (two.path / "best_embedder.keras").is_file() and two.scatter_frames()
    assert not list((tmp_path / "worker1").iterdir())

    # The same weights and centers: the gradients are the same sums in another order
    # (measured: 1.9e-9 at most over 252 variables, while training moved them by 8.7e-3).
    moved, count = _largest_difference(one.checkpoint("frozen"), one.checkpoint("finetune"))
    difference, _ = _largest_difference(one.checkpoint("finetune"), two.checkpoint("finetune"))
    assert count > 200 and moved > 5e-3
    assert difference < 1e-6
    centers_one, centers_two = np.load(one.centers), np.load(two.centers)
    assert np.abs(centers_one).max() > 1e-3
    np.testing.assert_allclose(centers_two, centers_one, atol=1e-6)
    [entry_one], [entry_two] = one.read_history(), two.read_history()
    for key in ("loss", "center_loss", "accuracy", "val_rank1"):
        assert entry_two[key] == pytest.approx(entry_one[key], abs=1e-5), key


def _backup_position(run: RunDir, phase: str) -> tuple[int, int] | None:
    """(epoch, batch) of the chief's last ``BackupAndRestore`` backup, if one is readable."""
    try:
        backup = tf.train.load_checkpoint(f"{run.backup(phase)}/chief")
        return tuple(
            int(backup.get_tensor(f"ckpt_saved_{name}/.ATTRIBUTES/VARIABLE_VALUE"))
            for name in ("epoch", "batch")
        )
    except (ValueError, tf.errors.OpError):  # none yet, or replaced while being read
        return None


@pytest.mark.slow
def test_a_killed_worker_and_a_restarted_cluster_finish_the_run(tmp_path):
    # 4 classes x 4 images, global batch 2: 8 steps an epoch, a backup after every second.
    # The frozen phase: the cheapest steps (a backup costs the same in either phase).
    data = write_class_folders(tmp_path / "data", classes=4, per_class=4)
    run = RunDir(tmp_path / "run")
    args = [*TINY, "--data", data, "--out", run.path, "--frozen-epochs", "2"]
    args += ["--finetune-epochs", "0", "--batch-size", "2", "--checkpoint-every", "2"]
    args += ["--val-classes", "0", "--scatter-classes", "0"]
    workers = loopback_workers(2)  # the same command, ports included, both times

    with Processes(tmp_path / "logs") as processes:
        start_workers(processes, workers, args, tmp_path)
        deadline = time.monotonic() + TIMEOUT_S
        while (_backup_position(run, "frozen") or (0, 0)) < (1, 1):  # in the second epoch
            assert processes.poll("worker0") is None, processes.log("worker0")[-3000:]
            assert time.monotonic() < deadline, "the cluster never reached its second epoch"
            time.sleep(0.05)
        processes.kill("worker1")
        # The chief's next collective operation fails: it stops by itself, with an error.
        assert processes.wait("worker0", TIMEOUT_S) != 0
    epoch, batch = _backup_position(run, "frozen")
    before = run.read_history()
    assert epoch == 1 and batch >= 1 and len(before) == 1  # killed in the middle of epoch 1

    with Processes(tmp_path / "logs-restart") as processes:
        start_workers(processes, workers, args, tmp_path)
        for name in ("worker0", "worker1"):
            assert processes.wait(name, TIMEOUT_S) == 0, processes.log(name)[-3000:]
    after = run.read_history()
    assert [(e["phase"], e["epoch"]) for e in after] == [("frozen", 0), ("frozen", 1)]
    assert after[0] == before[0]  # epoch 0 was restored from the backup, not trained again
    assert run.read_json(run.summary)["epochs"] == 2
    assert not list((run.path / "backup").rglob("*.index"))  # deleted when the phase ended
    assert not list(run.path.rglob("workertemp*"))
