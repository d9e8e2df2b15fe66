"""What native libraries (TensorFlow, LiteRT) print straight to file descriptor 2.

Their C++ loggers bypass Python's ``sys.stderr`` (and, before absl is initialised, any log
level): LiteRT prints ``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.`` for every
model it loads, TensorFlow three lines at import. ``captured()`` collects such lines so that
the caller can drop the noise and pass on the rest.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile


@contextlib.contextmanager
def captured():
    """Send descriptor 2 to a temporary file inside the block.

    Yields a list that holds the captured lines once the block is left (also when it raises).
    """
    lines: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+", errors="replace") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines.extend(capture.readlines())


def pass_on(lines: list[str], drop_prefixes: tuple[str, ...] = ("INFO: ",)) -> None:
    """Write the captured ``lines`` to stderr, except those starting with ``drop_prefixes``."""
    sys.stderr.writelines(line for line in lines if not line.startswith(drop_prefixes))
    sys.stderr.flush()
