"""The keyboard wedge: the key sequence of a code, and real typing through Linux uinput."""

from __future__ import annotations

import os
import select
import time

import pytest

from itemrec.edge_runtime.errors import InputError
from itemrec.edge_runtime.events import Ready, Scan
from itemrec.edge_runtime.wedge import (
    ENTER,
    SHIFT,
    US_LAYOUT,
    KeyboardWedge,
    key_events,
    types_scans,
)

evdev = pytest.importorskip("evdev", reason="python-evdev is not installed (edge-wedge extra)")


def press(key):
    return [(key, True), (key, False)]


def shifted(key):
    return [(SHIFT, True), *press(key), (SHIFT, False)]


def test_key_sequence_of_digits_letters_and_separators():
    assert key_events("Ab-12/3.z") == [
        *shifted("KEY_A"),
        *press("KEY_B"),
        *press("KEY_MINUS"),
        *press("KEY_1"),
        *press("KEY_2"),
        *press("KEY_SLASH"),
        *press("KEY_3"),
        *press("KEY_DOT"),
        *press("KEY_Z"),
        *press(ENTER),
    ]
    assert key_events("") == press(ENTER)
    assert key_events("_") == [*shifted("KEY_MINUS"), *press(ENTER)]


def test_the_keys_are_linux_input_event_codes():
    # Values from linux/input-event-codes.h (a kernel ABI): a wrong name would type another key.
    codes = evdev.ecodes
    expected = {"KEY_1": 2, "KEY_0": 11, "KEY_MINUS": 12, "KEY_A": 30, "KEY_Z": 44}
    expected |= {"KEY_DOT": 52, "KEY_SLASH": 53, "KEY_LEFTSHIFT": 42, "KEY_ENTER": 28}
    assert {name: getattr(codes, name) for name in expected} == expected
    names = {key for key, _ in US_LAYOUT.values()}
    assert all(isinstance(getattr(codes, name, None), int) for name in names)
    assert len(US_LAYOUT) == 95  # every printable ASCII character, space included


def test_untypeable_codes_are_refused_with_the_characters():
    with pytest.raises(InputError, match=r"cannot type 'ä€' of item code 'Kä€se'"):
        key_events("Kä€se")
    with pytest.raises(InputError, match="cannot type"):
        key_events("tab\there")


def uinput_missing() -> str | None:
    if not os.path.exists("/dev/uinput"):
        return "/dev/uinput does not exist here (no uinput module: a container or a VM)"
    if not os.access("/dev/uinput", os.W_OK):
        return "/dev/uinput is not writable by this user (see docs/serving.md for the udev rule)"
    return None


def typed_text(device, expected_events: int, timeout: float = 5.0) -> str:
    """Read key events from ``device`` and turn them back into characters (US layout)."""
    char_of = {(getattr(evdev.ecodes, key), shift): c for c, (key, shift) in US_LAYOUT.items()}
    text, shift_down, seen = "", False, 0
    deadline = time.monotonic() + timeout
    while seen < expected_events and time.monotonic() < deadline:
        if not select.select([device.fd], [], [], 0.2)[0]:
            continue
        for event in device.read():
            if event.type != evdev.ecodes.EV_KEY:
                continue
            seen += 1
            if event.code == evdev.ecodes.KEY_LEFTSHIFT:
                shift_down = event.value == 1
            elif event.code == evdev.ecodes.KEY_ENTER and event.value == 1:
                text += "\n"
            elif event.value == 1:
                text += char_of[(event.code, shift_down)]
    return text


@pytest.mark.skipif(uinput_missing() is not None, reason=str(uinput_missing()))
def test_real_uinput_types_scanned_codes_and_enter():
    with KeyboardWedge(key_delay=0.001) as wedge:
        device = wedge.device
        subscriber = types_scans(wedge)
        subscriber(Ready(source="test", items=1, stable_frames=3, min_score=None))  # ignored
        subscriber(Scan(code="Ab-12/3.z", name="x", score=0.9, frames=3, frame=3))
        subscriber(Scan(code="Käse", name="x", score=0.9, frames=3, frame=4))  # skipped
        subscriber(Scan(code="42", name="y", score=0.9, frames=3, frame=5))
        expected = len(key_events("Ab-12/3.z")) + len(key_events("42"))
        assert typed_text(device, expected) == "Ab-12/3.z\n42\n"


def test_without_uinput_the_wedge_says_what_to_do(tmp_path):
    with pytest.raises(InputError, match=r"cannot create a keyboard with .*docs/serving.md"):
        KeyboardWedge(devnode=str(tmp_path / "uinput"))


@pytest.mark.skipif(uinput_missing() is None, reason="/dev/uinput is usable here")
def test_run_with_type_codes_stops_at_start_without_uinput(tmp_path, reference):
    from click.testing import CliRunner
    from edge_helpers import INT8_MODEL, write_video
    from serve_helpers import make_gallery

    from itemrec.edge_runtime.cli import main
    from itemrec.edge_runtime.errors import ExitCode

    db = make_gallery(tmp_path / "g.db", reference["images"])
    video = write_video(tmp_path / "a.avi", [reference["images"][0]] * 30)
    args = ["run", "--model", INT8_MODEL, "--db", db, "--camera", video, "--headless"]
    result = CliRunner().invoke(main, [str(a) for a in [*args, "--type-codes"]])
    assert result.exit_code == ExitCode.BAD_INPUT
    assert "cannot create a keyboard with /dev/uinput" in result.output
