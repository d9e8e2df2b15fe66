"""The keyboard wedge: type each scanned item code and Enter, as a USB barcode scanner does.

A virtual keyboard made with Linux uinput (python-evdev) types into whatever field has the
focus, so a stock system that already takes barcode scans needs no change. Key codes are
those of a US keyboard layout, as most barcode scanners send by default: the desktop's layout
turns them back into characters, so give the session a US layout (or codes that only use
digits, which every Latin layout keeps in place). ``docs/serving.md`` has the udev rule that
lets the service's user open ``/dev/uinput``.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Callable

from itemrec.edge_runtime.errors import InputError
from itemrec.edge_runtime.events import Event, Scan

# Each character of a US layout: (key name in linux/input-event-codes.h, with shift).
_UNSHIFTED = {
    "-": "MINUS",
    "=": "EQUAL",
    "[": "LEFTBRACE",
    "]": "RIGHTBRACE",
    "\\": "BACKSLASH",
    ";": "SEMICOLON",
    "'": "APOSTROPHE",
    "`": "GRAVE",
    ",": "COMMA",
    ".": "DOT",
    "/": "SLASH",
    " ": "SPACE",
}
_SHIFTED = dict(zip("!@#$%^&*()", "1234567890", strict=True)) | {
    "_": "MINUS",
    "+": "EQUAL",
    "{": "LEFTBRACE",
    "}": "RIGHTBRACE",
    "|": "BACKSLASH",
    ":": "SEMICOLON",
    '"': "APOSTROPHE",
    "~": "GRAVE",
    "<": "COMMA",
    ">": "DOT",
    "?": "SLASH",
}
US_LAYOUT: dict[str, tuple[str, bool]] = {
    **{c: (f"KEY_{c}", False) for c in "0123456789"},
    **{c: (f"KEY_{c.upper()}", False) for c in "abcdefghijklmnopqrstuvwxyz"},
    **{c: (f"KEY_{c}", True) for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"},
    **{c: (f"KEY_{key}", False) for c, key in _UNSHIFTED.items()},
    **{c: (f"KEY_{key}", True) for c, key in _SHIFTED.items()},
}
SHIFT, ENTER = "KEY_LEFTSHIFT", "KEY_ENTER"
# Pause after each key event. Not measured on a desktop (none here): 5 ms keeps a 13-character
# code plus Enter under 0.3 s, slower than a human typist never is yet well above the 1 ms
# event timestamps' resolution, so no consumer sees two keys at one instant.
DEFAULT_KEY_DELAY = 0.005


def untypeable(code: str) -> str:
    """The characters of ``code`` that the wedge cannot type, in order of appearance."""
    return "".join(dict.fromkeys(c for c in code if c not in US_LAYOUT))


def key_events(code: str) -> list[tuple[str, bool]]:
    """The ``(key name, pressed)`` sequence that types ``code`` and Enter on a US layout.

    Shift is held only around the characters that need it. Raises ``InputError`` for a
    character no US key types (non-ASCII letters, control characters).
    """
    missing = untypeable(code)
    if missing:
        raise InputError(f"the keyboard wedge cannot type {missing!r} of item code {code!r}")
    events: list[tuple[str, bool]] = []
    for char in code:
        key, shifted = US_LAYOUT[char]
        if shifted:
            events.append((SHIFT, True))
        events += [(key, True), (key, False)]
        if shifted:
            events.append((SHIFT, False))
    return events + [(ENTER, True), (ENTER, False)]


class KeyboardWedge:
    """A uinput keyboard typing codes from a queue in its own thread (the caller never waits).

    ``type_code`` queues a code; ``close`` types what is queued, then removes the keyboard.
    """

    def __init__(
        self,
        devnode: str = "/dev/uinput",
        key_delay: float = DEFAULT_KEY_DELAY,
        name: str = "itemrec keyboard wedge",
    ):
        try:
            from evdev import UInput, UInputError, ecodes
        except ImportError:
            raise InputError(
                "--type-codes needs python-evdev: pip install 'itemrec[edge-wedge]'"
            ) from None
        self._codes = {name: getattr(ecodes, name) for name, _ in US_LAYOUT.values()}
        self._codes.update({SHIFT: ecodes.KEY_LEFTSHIFT, ENTER: ecodes.KEY_ENTER})
        self._ecodes = ecodes
        try:
            self._device = UInput(
                {ecodes.EV_KEY: sorted(set(self._codes.values()))}, name=name, devnode=devnode
            )
        except (OSError, UInputError) as err:
            reason = getattr(err, "strerror", None) or str(err)
            raise InputError(
                f"cannot create a keyboard with {devnode} ({reason}): load the uinput module "
                "and let this user write to it (docs/serving.md, 'Keyboard wedge')"
            ) from None
        self.key_delay = key_delay
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="keyboard-wedge", daemon=True)
        self._thread.start()

    @property
    def device(self):
        """The ``evdev.InputDevice`` of the virtual keyboard (to read back what it types)."""
        return self._device.device

    def type_code(self, code: str) -> None:
        """Queue ``code`` (typed with Enter after it); ``InputError`` if it is untypeable."""
        key_events(code)  # refuse now, in the caller's thread, rather than in the typist's
        self._queue.put(code)

    def _run(self) -> None:
        while (code := self._queue.get()) is not None:
            for key, pressed in key_events(code):
                self._device.write(self._ecodes.EV_KEY, self._codes[key], int(pressed))
                self._device.syn()
                time.sleep(self.key_delay)

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=10)
        self._device.close()

    def __enter__(self) -> KeyboardWedge:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def types_scans(wedge: KeyboardWedge) -> Callable[[Event], None]:
    """An event-stream subscriber typing the code of each ``scan`` (others are ignored).

    A code the wedge cannot type is named on stderr and skipped; the loop goes on.
    """

    def subscriber(event: Event) -> None:
        if isinstance(event, Scan):
            try:
                wedge.type_code(event.code)
            except InputError as error:
                print(f"keyboard wedge: {error.one_line()}", file=sys.stderr, flush=True)

    return subscriber
