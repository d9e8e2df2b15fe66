"""One itemrec process per camera: an advisory lock file names the process that holds it.

``itemrec-edge run`` (the service) holds its camera for as long as it runs; ``enroll --camera``
on the same camera then fails at once with "camera busy" and the way out, instead of a camera
that opens and delivers nothing. The lock is ``flock`` on
``/run/lock/itemrec-camera-<name>.lock`` (world-writable on Debian and Pi OS, shared by the
service and a login shell; ``$ITEMREC_LOCK_DIR`` overrides it). The kernel drops the lock when
the process ends, however it ends.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path

from itemrec.edge_runtime.errors import CameraError

LOCK_DIR_ENV = "ITEMREC_LOCK_DIR"
SERVICE = "itemrec-edge"


def lock_dir() -> Path:
    if os.environ.get(LOCK_DIR_ENV):
        return Path(os.environ[LOCK_DIR_ENV])
    run_lock = Path("/run/lock")
    if run_lock.is_dir() and os.access(run_lock, os.W_OK):
        return run_lock
    return Path(tempfile.gettempdir())


class CameraLock:
    """An exclusive, non-blocking lock on one camera (``acquire``/``release``)."""

    def __init__(self, camera_name: str):
        self.camera_name = camera_name
        slug = re.sub(r"[^A-Za-z0-9]+", "-", camera_name).strip("-")
        self.path = lock_dir() / f"itemrec-camera-{slug}.lock"
        self._fd: int | None = None

    def acquire(self) -> CameraLock:
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock, the camera driver decides
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            os.fchmod(fd, 0o666)  # the service's user and a login user share the file
        except OSError:
            pass  # created by another user, who made it shareable
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise CameraError(
                f"camera {self.camera_name!r} is busy: {holder} holds it (the {SERVICE} "
                f"service?). Stop it (sudo systemctl stop {SERVICE}), enroll, then start it "
                f"again (sudo systemctl start {SERVICE}); or enroll from image files, which "
                "works while it runs"
            ) from None
        os.ftruncate(fd, 0)
        command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:2]])
        os.pwrite(fd, f"{command} (pid {os.getpid()})".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None
