"""Each private framework call of ``itemrec.train.private_api`` still does what we rely on."""

from pathlib import Path

from itemrec.train.keras_api import keras
from itemrec.train.private_api import backup_now, inbound_layer_name, interpreter_ops

FIXTURES = Path(__file__).parents[1] / "fixtures"


def test_interpreter_ops_lists_the_graph():
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(FIXTURES / "tiny_int8.tflite"), num_threads=1)
    ops = interpreter_ops(interpreter)
    names = [op["op_name"] for op in ops]
    assert "L2_NORMALIZATION" in names and "CONV_2D" in names
    assert [op["index"] for op in ops] == list(range(len(ops)))
    assert all(len(op["outputs"]) >= 1 and len(op["inputs"]) >= 1 for op in ops)


def test_backup_now_writes_a_backup(tmp_path):
    inputs = keras.Input((3,), name="features")
    model = keras.Model(inputs, keras.layers.Dense(2, name="dense")(inputs))
    model.compile(optimizer="sgd", loss="mse")
    callback = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"), save_freq=10)
    callback.set_model(model)
    callback.on_train_begin()
    assert not any((tmp_path / "backup").rglob("*.index"))
    backup_now(callback, epoch=0)
    assert any((tmp_path / "backup").rglob("*.index"))


def test_inbound_layer_name_is_the_feeding_layer():
    inputs = keras.Input((3,), name="features")
    hidden = keras.layers.Dense(4, name="hidden")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, name="out")(hidden))
    assert inbound_layer_name(model.get_layer("out")) == "hidden"
    assert inbound_layer_name(model.get_layer("hidden")) == "features"
