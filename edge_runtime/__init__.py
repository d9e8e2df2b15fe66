"""itemrec's device side: everything that runs on a phone-class CPU or a Raspberry Pi.

This package depends on numpy, OpenCV and a TFLite interpreter only. It never imports
TensorFlow, ``train`` or ``convert``: the device is the leaf of the dependency graph and
owns the contract that training and conversion follow (see ``docs/contract.md``).
"""

__version__ = "0.1.0"
