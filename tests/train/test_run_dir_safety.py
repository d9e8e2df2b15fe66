"""A shared run directory cannot run code: crafted embedders are refused before Keras sees them.

Each crafted ``embedder.keras`` would write a marker file if Keras loaded it; a positive
control proves that it does (so the test can fail), then ``itemrec-eval`` and
``itemrec-convert`` (real processes) and ``load_run`` must refuse it with one line, exit code 4,
and the marker must not exist.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from itemrec.edge_runtime.errors import ExitCode, ModelError
from itemrec.train.keras_api import keras
from itemrec.train.run_dir import RunDir, load_run

pytestmark = pytest.mark.filterwarnings("ignore:You are saving your model as an HDF5 file")
GADGET_MODULE = "itemrec_test_gadget"  # stands for any installed module with import side effects


def tool(name: str) -> list[str]:
    """The console script ``name`` of this environment."""
    script = Path(sys.executable).with_name(name)
    assert script.exists(), f"{script} is missing: run 'make venv'"
    return [str(script)]


def small_model(extra=None) -> keras.Model:
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    if extra is not None:
        x = extra(x)
    return keras.Model(inputs, keras.layers.Dense(4)(x))


def marker_lambda(marker: Path) -> keras.layers.Layer:
    path = str(marker)
    return keras.layers.Lambda(lambda t: (__import__("pathlib").Path(path).touch(), t)[1])


def make_run(root: Path, save) -> RunDir:
    """A run directory with a config and the ``embedder.keras`` that ``save(path)`` writes."""
    run = RunDir(root)
    root.mkdir(parents=True)
    run.write_json(run.config, {"backbone": "efficientnet_lite0", "image_size": 8})
    save(run.embedder)
    return run


def rewrite_config(path: Path, change) -> None:
    """Apply ``change`` to the config.json of the .keras archive at ``path``, in place."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members["config.json"])
    change(config)
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "code-ran"


@pytest.fixture
def hdf5_run(tmp_path, marker) -> RunDir:
    """embedder.keras is an HDF5 file (not a zip) holding Lambda bytecode."""
    run = make_run(
        tmp_path / "hdf5_run",
        lambda path: small_model(marker_lambda(marker)).save(path, save_format="h5"),
    )
    marker.unlink(missing_ok=True)  # building the model ran the lambda once
    return run


@pytest.fixture
def gadget_run(tmp_path, marker, monkeypatch) -> RunDir:
    """A .keras zip whose config names an importable module that writes the marker on import."""
    (tmp_path / f"{GADGET_MODULE}.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).touch()\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))

    def save(path):
        small_model().save(path)

        def name_the_gadget(config):
            config.update(module=GADGET_MODULE, class_name="Model", registered_name="Model")

        rewrite_config(path, name_the_gadget)

    return make_run(tmp_path / "gadget_run", save)


def test_the_crafted_embedders_do_run_code_when_keras_loads_them(hdf5_run, gadget_run, marker):
    """Positive controls: tf_keras 2.21 runs both, safe mode or not."""
    keras.models.load_model(hdf5_run.embedder, compile=False, safe_mode=True)
    assert marker.exists(), "the HDF5 Lambda did not run: the refusal tests prove nothing"
    marker.unlink()
    with pytest.raises(TypeError):  # the module is imported before the class is missed
        keras.models.load_model(gadget_run.embedder, compile=False, safe_mode=True)
    assert marker.exists(), "the module was not imported: the refusal tests prove nothing"
    sys.modules.pop(GADGET_MODULE, None)


def assert_refused(proc, *fragments):
    errors = [line for line in proc.stderr.splitlines() if ": error: " in line]
    assert proc.returncode == ExitCode.BAD_MODEL, proc.stderr
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def test_eval_and_convert_refuse_an_hdf5_embedder(hdf5_run, marker, tmp_path):
    data = tmp_path / "unseen"
    for code, value in (("a", 40), ("b", 200)):
        (data / code).mkdir(parents=True)
        for index in range(2):
            image = np.full((16, 16, 3), value + index, np.uint8)
            assert cv2.imwrite(str(data / code / f"{index}.png"), image)
    commands = {
        "itemrec-eval": [hdf5_run.path, "--data", data, "--out", tmp_path / "eval"],
        "itemrec-convert": [hdf5_run.path, "-o", tmp_path / "m.tflite"],
    }
    for name, args in commands.items():
        proc = subprocess.run(
            tool(name) + [str(a) for a in args], capture_output=True, text=True, timeout=300
        )
        assert_refused(proc, str(hdf5_run.embedder), "not a .keras zip archive")
        assert not marker.exists(), f"{name} ran the Lambda"
    assert not (tmp_path / "m.tflite").exists()


def test_every_crafted_embedder_is_refused_by_load_run(
    tmp_path, hdf5_run, gadget_run, marker, monkeypatch
):
    lambda_zip = make_run(
        tmp_path / "lambda_zip_run", lambda path: small_model(marker_lambda(marker)).save(path)
    )
    marker.unlink(missing_ok=True)
    # A training network (model.keras) is read when embedder.keras is absent.
    fallback = make_run(tmp_path / "fallback_run", lambda path: None)
    small_model(marker_lambda(marker)).save(fallback.model, save_format="h5")
    marker.unlink(missing_ok=True)
    cases = {
        hdf5_run: "not a .keras zip archive",
        gadget_run: f"names the module '{GADGET_MODULE}'",
        lambda_zip: "holds a Lambda layer",
        fallback: "not a .keras zip archive",
    }
    for run, reason in cases.items():
        with pytest.raises(ModelError, match=reason) as error:
            load_run(run.path)
        assert str(run.path) in str(error.value)
        assert not marker.exists() and GADGET_MODULE not in sys.modules


def test_hand_edited_json_files_are_model_errors_naming_the_file(tmp_path):
    run = RunDir(tmp_path)
    for path, content, reader in (
        (run.config, "[1, 2]", run.read_config),
        (run.state, '{"finished_phases": 3}', run.read_state),
        (run.state, "[]", run.read_state),
        (run.history, '[{"epoch": 1}]', run.read_history),
        (run.history, '{"global_epoch": 1}', run.read_history),
    ):
        path.write_text(content, encoding="utf-8")
        with pytest.raises(ModelError, match=path.name):
            reader()
