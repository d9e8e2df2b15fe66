"""Every call itemrec makes into a framework's private API, in one place, each one tested.

These have no public equivalent today. A framework upgrade that breaks one fails its test
in ``tests/train/test_private_api.py`` rather than a conversion or a resumed run.
"""

from __future__ import annotations


def interpreter_ops(interpreter) -> list[dict]:
    """Every operator of a LiteRT/TFLite ``Interpreter``: ``op_name``, ``index``, ``inputs``,
    ``outputs`` (tensor indices). Public API offers tensors only, not the graph."""
    return interpreter._get_ops_details()


def backup_now(callback, epoch: int) -> None:
    """Make a ``BackupAndRestore`` callback write its backup now (it does so on its own only
    at epoch ends *or* every N batches, never both)."""
    callback._backup(epoch=epoch)


def inbound_layer_name(layer) -> str:
    """The name of the layer whose output feeds ``layer`` (a single-input layer).

    tfmot's ``QuantizeLayer`` is named after no layer; its inbound node says what it quantises.
    """
    return layer._inbound_nodes[0].inbound_layers.name
