"""Put this folder on PYTHONPATH to make TensorFlow unimportable (the Raspberry Pi situation).

Every attempt to import ``tensorflow``, ``tf_keras`` or ``keras`` raises ImportError and is
appended to the file named by ``ITEMREC_IMPORT_LOG``, so a test can prove none was tried.
"""

import os
import sys

BLOCKED = ("tensorflow", "tf_keras", "keras")


class _BlockTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            log = os.environ.get("ITEMREC_IMPORT_LOG")
            if log:
                with open(log, "a", encoding="utf-8") as f:
                    f.write(name + "\n")
            raise ImportError(f"{name} is blocked: the device has no TensorFlow")
        return None


sys.meta_path.insert(0, _BlockTensorFlow())
