"""itemrec's converter: a training run's embedder -> a verified, quantised ``.tflite``.

Importing :mod:`itemrec.train` first selects tf_keras before any module here (or tfmot)
imports TensorFlow.
"""

import itemrec.train  # noqa: F401
