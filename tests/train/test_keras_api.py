"""The one TensorFlow switch: tf_keras selected, Keras 3 refused clearly, start-up kept quiet."""

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # each case starts TensorFlow in a fresh process (~5 s)


def python(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_keras_3_is_refused_with_what_to_do():
    done = python("import itemrec.train.keras_api", TF_USE_LEGACY_KERAS="0")
    assert done.returncode == 1
    assert "ImportError: tf.keras is Keras 3" in done.stderr
    assert "import itemrec.train (or set that variable) before TensorFlow" in done.stderr


def test_quiet_tensorflow_leaves_stderr_empty():
    code = (
        "from itemrec.train import quiet_tensorflow; quiet_tensorflow(); "
        "from itemrec.train.keras_api import keras, tf; "
        "assert keras.__name__.startswith('tf_keras'); print(int(tf.constant(2) + 1))"
    )
    done = python(code)
    assert done.returncode == 0 and done.stdout == "3\n"
    assert done.stderr == ""
    # Without it, TensorFlow's own start-up lines are there (this is what gets silenced).
    loud = python(code.replace("quiet_tensorflow()", "quiet_tensorflow(verbose=True)"))
    assert loud.returncode == 0 and loud.stderr.strip()


def test_importing_itemrec_starts_no_tensorflow_runtime():
    """A multi-worker cluster must connect before TensorFlow's runtime starts: an op at import
    (a module-level tf.constant) breaks it ("Collective ops must be configured at startup")."""
    code = (
        "import pkgutil, importlib, itemrec.train, itemrec.convert\n"
        "for package in (itemrec.train, itemrec.convert):\n"
        "    for module in pkgutil.walk_packages(package.__path__, package.__name__ + '.'):\n"
        "        if not module.name.endswith('.cli'):\n"
        "            importlib.import_module(module.name)\n"
        "from itemrec.train.keras_api import tf\n"
        "tf.config.threading.set_intra_op_parallelism_threads(2)  # raises once it has started\n"
        "print('not started')\n"
    )
    done = python(code)
    assert done.returncode == 0 and done.stdout == "not started\n", done.stderr[-2000:]
