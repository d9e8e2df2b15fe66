"""Inspect a ``.tflite`` graph with the LiteRT interpreter: op counts and float tensors.

An integer model has no float tensor anywhere except the model's own inputs and outputs
(where a QUANTIZE or DEQUANTIZE op may take float data in or give it out).
"""

from __future__ import annotations

import collections

import numpy as np

from itemrec.train.private_api import interpreter_ops

FLOAT_TYPES = (np.float16, np.float32, np.float64)


def inspect_graph(tflite_bytes: bytes) -> dict:
    """``{"ops": {name: count}, "float_ops": ["OP#index", ...], "integer": bool}``.

    An op is listed in ``float_ops`` when one of its tensors is float and is not a model
    input or output.
    """
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=tflite_bytes, num_threads=1)
    dtypes = {t["index"]: np.dtype(t["dtype"]) for t in interpreter.get_tensor_details()}
    ops = interpreter_ops(interpreter)
    counts = collections.Counter(op["op_name"] for op in ops)
    edges = {d["index"] for d in interpreter.get_input_details() + interpreter.get_output_details()}
    float_ops = [
        f"{op['op_name']}#{op['index']}"
        for op in ops
        if any(
            i >= 0 and i not in edges and dtypes.get(i) in FLOAT_TYPES
            for i in list(op["inputs"]) + list(op["outputs"])
        )
    ]
    return {"ops": dict(sorted(counts.items())), "float_ops": float_ops, "integer": not float_ops}
