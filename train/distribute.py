"""Where training runs: the distribution strategy, each worker's role, the numeric precision.

Across machines (``TF_CONFIG`` names a cluster, see ``docs/multi-machine.md``) every worker
runs the same command and the same code. Saving a model or a checkpoint reads
variables that only all workers together can read (batch-norm statistics are all-reduced
on read), so every worker saves, as Keras documents for multi-worker training: the chief
into the run directory, the others into a temporary directory deleted when they finish.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import tempfile

from itemrec.train.keras_api import tf
from itemrec.train.run_dir import RunDir

log = logging.getLogger(__name__)


def choose_strategy() -> tf.distribute.Strategy:
    """``MultiWorkerMirroredStrategy`` when ``TF_CONFIG`` names a cluster, ``MirroredStrategy``
    when more than one GPU is visible, otherwise the default (one device) strategy.

    Call it before anything else runs TensorFlow ops: the multi-worker strategy configures
    the runtime's collective ops, which can only happen at start-up. It returns once every
    worker of the cluster has connected.
    """
    if os.environ.get("TF_CONFIG") and json.loads(os.environ["TF_CONFIG"]).get("cluster"):
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        log.info(
            "MultiWorkerMirroredStrategy with %d replicas; this process is %s",
            strategy.num_replicas_in_sync,
            worker_name(strategy),
        )
    elif len(tf.config.list_logical_devices("GPU")) > 1:
        strategy = tf.distribute.MirroredStrategy()
        log.info("MirroredStrategy with %d replicas", strategy.num_replicas_in_sync)
    else:
        return tf.distribute.get_strategy()
    return strategy


def tf_config(workers: list[str], index: int) -> str:
    """The ``TF_CONFIG`` of worker ``index`` of the cluster ``workers`` (``host:port``, the
    same list on every machine); worker 0 is the chief."""
    return json.dumps(
        {"cluster": {"worker": list(workers)}, "task": {"type": "worker", "index": index}}
    )


def loopback_workers(count: int) -> list[str]:
    """``count`` addresses ``127.0.0.1:<free port>``: a cluster on this machine, to try
    multi-worker training (and test it) without a network."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for each in sockets:
            each.bind(("127.0.0.1", 0))
        return [f"127.0.0.1:{each.getsockname()[1]}" for each in sockets]
    finally:
        for each in sockets:
            each.close()


def worker_name(strategy: tf.distribute.Strategy) -> str | None:
    """``"worker 1"`` (or ``"chief 0"``) in a cluster, None for a single process."""
    resolver = strategy.cluster_resolver
    if resolver is None or not resolver.task_type:
        return None
    return f"{resolver.task_type} {resolver.task_id}"


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run directory: the only process, or the cluster's chief
    (the ``chief`` task, else ``worker`` 0)."""
    return strategy.extended.should_checkpoint


@contextlib.contextmanager
def writable_run_dir(run_dir: RunDir, strategy: tf.distribute.Strategy):
    """The run directory this process writes: ``run_dir`` on the chief; on any other worker a
    temporary :class:`RunDir` of the same layout, deleted when the block ends (also on error)."""
    if is_chief(strategy):
        yield run_dir
        return
    name = (worker_name(strategy) or "worker").replace(" ", "")
    with tempfile.TemporaryDirectory(prefix=f"itemrec-{name}-") as temporary:
        log.info(
            "%s writes to %s (deleted at the end); the chief writes %s",
            name,
            temporary,
            run_dir.path,
        )
        yield RunDir(temporary)


@contextlib.contextmanager
def precision_policy(mixed: bool):
    """``mixed_float16`` inside the block when ``mixed``; the previous policy after.

    Variables, the center-loss centers, the output layers and every loss stay float32;
    only the layers' computations run in float16. It pays on GPUs with tensor cores
    (compute capability 7.0+); on a CPU it runs, more slowly (``bench_train.py``).
    """
    previous = tf.keras.mixed_precision.global_policy()
    if mixed:
        tf.keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        tf.keras.mixed_precision.set_global_policy(previous)
