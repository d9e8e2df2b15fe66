"""The errors itemrec expects, and the exit codes the four command-line tools share.

Every expected failure is an :class:`ItemrecError`: its message is one line that names the
file or option at fault, and its class says which exit code a tool ends with. Anything
else is a bug: it keeps Python's exit status 1 and its traceback. The systemd unit keys its
restart policy on these codes (``deploy/``), so they never change meaning.

=====  ===================  ==============================================================
code   name                 meaning
=====  ===================  ==============================================================
0      OK                   done, or stopped on purpose (Ctrl-C, SIGTERM, ``q``)
1      CRASH                an unexpected exception (Python's own status, with traceback)
2      USAGE                a bad command line (click's own status)
3      BAD_INPUT            unreadable or invalid data: images, class folders, CSV, config
4      BAD_MODEL            a model, run directory, weights file or gallery that cannot be
                            used (missing, corrupt, foreign, or made by another model)
5      CAMERA_UNAVAILABLE   the camera cannot be opened (absent, busy, wrong kind)
6      CAMERA_LOST          the camera stopped delivering frames and did not come back
7      BUSY                 another process holds the gallery: retry later
=====  ===================  ==============================================================
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """The exit status of every itemrec command (see the module docstring)."""

    OK = 0
    CRASH = 1
    USAGE = 2
    BAD_INPUT = 3
    BAD_MODEL = 4
    CAMERA_UNAVAILABLE = 5
    CAMERA_LOST = 6
    BUSY = 7


class ItemrecError(Exception):
    """An expected failure: a one-line message for the user and the exit code it maps to."""

    exit_code = ExitCode.BAD_INPUT

    def one_line(self) -> str:
        """The message's first line (never empty)."""
        text = str(self).strip()
        return text.splitlines()[0] if text else type(self).__name__


class InputError(ItemrecError):
    """Data or options that cannot be used: folders, CSV files, configs, output paths."""

    exit_code = ExitCode.BAD_INPUT


class ImageLoadError(InputError):
    """One image cannot be read; the message names the file and the reason.

    Commands that take many images skip such a file, report it and go on with the rest.
    """


class ModelError(ItemrecError):
    """A model, training run, spec or weights file that is missing, corrupt or unusable."""

    exit_code = ExitCode.BAD_MODEL


class GalleryError(ItemrecError):
    """A gallery (``gallery.db`` or ``gallery.bin``) that is missing, corrupt, foreign,
    made by another model, or asked something impossible."""

    exit_code = ExitCode.BAD_MODEL


class GalleryBusyError(GalleryError):
    """Another process holds the gallery's write lock for longer than we wait."""

    exit_code = ExitCode.BUSY


class CameraError(ItemrecError):
    """A camera cannot be opened: absent, busy, or not readable the way it was asked."""

    exit_code = ExitCode.CAMERA_UNAVAILABLE


class CameraLostError(CameraError):
    """A camera that was open stopped delivering frames and did not recover."""

    exit_code = ExitCode.CAMERA_LOST
