"""itemrec's training side: data, embedding model, losses, schedule, evaluation, ``itemrec-train``.

Importing any ``itemrec.train`` module first runs this file, which selects the Keras 2 API
(tf_keras) that tensorflow-model-optimization needs. TensorFlow reads the switch at its
first import, so it must be set before anything imports TensorFlow; modules then take
``tf`` and ``keras`` from :mod:`itemrec.train.keras_api`, which refuses Keras 3.
"""

import os

import click

#: The environment switch TensorFlow reads at its first import to make ``tf.keras`` tf_keras.
KERAS_SWITCH = "TF_USE_LEGACY_KERAS"
os.environ.setdefault(KERAS_SWITCH, "1")


def quiet_tensorflow(verbose: bool = False) -> None:
    """Silence TensorFlow's C++ start-up and log lines (the CLIs' default), unless ``verbose``.

    Takes effect only before TensorFlow is imported; :mod:`itemrec.train.keras_api` also
    drops the lines absl prints before its logging starts, which ignore this setting.
    """
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0" if verbose else "3"


verbose_option = click.option(
    "--verbose", "-v", is_flag=True, help="Show TensorFlow's own start-up and log lines."
)
