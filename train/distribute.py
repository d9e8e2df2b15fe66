"""Where training runs: the distribution strategy and the numeric precision."""

from __future__ import annotations

import contextlib
import json
import logging
import os

from itemrec.train.keras_api import tf

log = logging.getLogger(__name__)


def choose_strategy() -> tf.distribute.Strategy:
    """``MultiWorkerMirroredStrategy`` when ``TF_CONFIG`` names a cluster, ``MirroredStrategy``
    when more than one GPU is visible, otherwise the default (one device) strategy."""
    if os.environ.get("TF_CONFIG") and json.loads(os.environ["TF_CONFIG"]).get("cluster"):
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    elif len(tf.config.list_logical_devices("GPU")) > 1:
        strategy = tf.distribute.MirroredStrategy()
    else:
        return tf.distribute.get_strategy()
    log.info("%s with %d replicas", type(strategy).__name__, strategy.num_replicas_in_sync)
    return strategy


@contextlib.contextmanager
def precision_policy(mixed: bool):
    """``mixed_float16`` inside the block when ``mixed`` (GPUs); the previous policy after."""
    previous = tf.keras.mixed_precision.global_policy()
    if mixed:
        tf.keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        tf.keras.mixed_precision.set_global_policy(previous)
