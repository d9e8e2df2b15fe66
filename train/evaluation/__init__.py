"""Evaluation of embedding models on items never seen in training: ``itemrec-eval``.

It scores run directories (TensorFlow), ``.tflite`` files (the device's interpreter) and
frozen pretrained baselines through one path, and its metrics also serve training's
validation callback and the converter's verification. It lives in ``itemrec.train``
because that is the lowest package that may use both TensorFlow and the device runtime
(``convert -> train -> edge_runtime``); the device itself never evaluates.
"""
