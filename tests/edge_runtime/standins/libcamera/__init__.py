"""A stand-in for libcamera's Python bindings: only ``controls.AfModeEnum`` (values as in
libcamera's ``control_ids_core.yaml``: Manual 0, Auto 1, Continuous 2)."""

import enum
from types import SimpleNamespace


class AfModeEnum(enum.IntEnum):
    Manual = 0
    Auto = 1
    Continuous = 2


controls = SimpleNamespace(AfModeEnum=AfModeEnum)
