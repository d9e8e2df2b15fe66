"""itemrec's training side: data, embedding model, losses, schedule and ``itemrec-train``.

Importing any ``train`` module first selects the Keras 2 API (tf_keras), which
tensorflow-model-optimization needs; this must happen before TensorFlow is imported.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
