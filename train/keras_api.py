"""TensorFlow with the Keras 2 API: ``from itemrec.train.keras_api import keras, tf``.

Every module of ``itemrec.train`` and ``itemrec.convert`` takes TensorFlow from here, never
by ``import tensorflow``. ``itemrec/train/__init__.py`` has already selected tf_keras; if
TensorFlow was imported earlier with Keras 3 (by the caller), this module refuses clearly
instead of failing later inside tfmot ("`to_quantize` can only either be a keras Sequential
or Functional model").
"""

from __future__ import annotations

import importlib
import os
import sys

from itemrec.edge_runtime import native_stderr
from itemrec.train import KERAS_SWITCH

#: The value of TF_CPP_MIN_LOG_LEVEL that means "no C++ log lines at all".
_SILENT = "3"


def _import_tensorflow():
    if "tensorflow" in sys.modules or os.environ.get("TF_CPP_MIN_LOG_LEVEL") != _SILENT:
        return importlib.import_module("tensorflow")
    # absl prints what TensorFlow logs before absl's logging starts (oneDNN, the CUDA stub:
    # 3 lines at every start) whatever the level: drop them, unless the import fails.
    try:
        with native_stderr.captured() as lines:
            return importlib.import_module("tensorflow")
    except BaseException:
        native_stderr.pass_on(lines, drop_prefixes=())
        raise


tf = _import_tensorflow()
keras = tf.keras
if not keras.__name__.startswith("tf_keras"):
    raise ImportError(
        f"tf.keras is Keras 3: TensorFlow was imported before itemrec.train set {KERAS_SWITCH}=1; "
        "import itemrec.train (or set that variable) before TensorFlow"
    )

__all__ = ["keras", "tf"]
