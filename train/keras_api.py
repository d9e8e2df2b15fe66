"""TensorFlow with the Keras 2 API: ``from itemrec.train.keras_api import keras, tf``.

Every module of ``itemrec.train`` and ``itemrec.convert`` takes TensorFlow from here, never
by ``import tensorflow``. ``itemrec/train/__init__.py`` has already selected tf_keras; if
TensorFlow was imported earlier with Keras 3 (by the caller), this module refuses clearly
instead of failing later inside tfmot ("`to_quantize` can only either be a keras Sequential
or Functional model").
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import tempfile

from itemrec.train import KERAS_SWITCH

#: The value of TF_CPP_MIN_LOG_LEVEL that means "no C++ log lines at all".
_SILENT = "3"


@contextlib.contextmanager
def _stderr_to_file():
    """Send file descriptor 2 to a temporary file inside the block; yield that file.

    absl writes what TensorFlow logs before absl's logging is initialised (oneDNN, CUDA
    stub, 3 lines at every start) straight to descriptor 2, whatever the log level.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _import_tensorflow():
    if "tensorflow" in sys.modules or os.environ.get("TF_CPP_MIN_LOG_LEVEL") != _SILENT:
        return importlib.import_module("tensorflow")
    with _stderr_to_file() as captured:
        try:
            return importlib.import_module("tensorflow")
        except BaseException:
            captured.seek(0)
            noise = captured.read()
            failed = True
        else:
            failed = False
    if failed:  # show what TensorFlow said, then the error itself
        sys.stderr.write(noise)
        return importlib.import_module("tensorflow")
    return sys.modules["tensorflow"]


tf = _import_tensorflow()
keras = tf.keras
if not keras.__name__.startswith("tf_keras"):
    raise ImportError(
        f"tf.keras is Keras 3: TensorFlow was imported before itemrec.train set {KERAS_SWITCH}=1; "
        "import itemrec.train (or set that variable) before TensorFlow"
    )

__all__ = ["keras", "tf"]
