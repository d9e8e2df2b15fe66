"""itemrec's device side: everything that runs on a phone-class CPU or a Raspberry Pi.

This package depends on numpy, OpenCV and a TFLite interpreter only. It never imports
TensorFlow, ``train`` or ``convert``: the device is the leaf of the dependency graph and
owns the contract that training and conversion follow (see ``docs/contract.md``).

Importing it sets two OpenCV variables unless the environment already sets them. OpenCV
reads them once, when ``cv2`` is first imported, and every itemrec module that uses OpenCV
is inside this package, so this file runs first for every tool and for library use:

* ``OPENCV_IO_MAX_IMAGE_PIXELS`` = :data:`MAX_IMAGE_PIXELS`: OpenCV's own decoding limit,
  which backs up the header checks of :mod:`itemrec.edge_runtime.images` for any format whose
  header lies (a process that imported ``cv2`` before itemrec keeps OpenCV's default of 2^30
  pixels and only those checks);
* ``OPENCV_LOG_LEVEL`` = ``OFF``: OpenCV's own log lines about a bad file ("can't read
  header", a bogus TIFF tag) would add lines that do not name the file to the one-line
  errors itemrec prints for every failure (set it to ``INFO`` to see them).
"""

import os

__version__ = "0.1.0"

#: The most pixels an image may have (a 12 MP phone photo has 12e6; 200 MP modes exist).
MAX_IMAGE_PIXELS = 64_000_000

os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_IMAGE_PIXELS))
os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
