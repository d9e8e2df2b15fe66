"""The scan event stream: debouncing, the JSON-lines schema, subscribers, and the live CLI."""

from __future__ import annotations

import io
import json

import pytest
from click.testing import CliRunner
from edge_helpers import INT8_MODEL, ITEM_IMAGES, UNKNOWN_IMAGE, write_video

from itemrec.edge_runtime.cli import main
from itemrec.edge_runtime.events import (
    DEFAULT_STABLE_FRAMES,
    SCHEMA_VERSION,
    CameraLost,
    Debouncer,
    EventStream,
    JsonLinesWriter,
    Ready,
    Scan,
    parse_event,
)
from itemrec.edge_runtime.gallery import Gallery
from itemrec.edge_runtime.lookup import Identification, Match


def answer(code: str | None, score: float = 0.9, threshold: float = 0.5) -> Identification:
    """A frame's identification: ``code`` at ``score`` (None: an unknown item at 0.2)."""
    if code is None:
        return Identification([Match("A", "apple", 0.2)], threshold)
    return Identification([Match(code, code.lower(), score)], threshold)


def scans(debouncer: Debouncer, codes: list) -> list[tuple[str, int]]:
    """(code, frame number) of each scan the frames ``codes`` confirm."""
    out = []
    for frame, code in enumerate(codes, 1):
        scan = debouncer.update(answer(code), frame)
        if scan is not None:
            out.append((scan.code, scan.frame))
    return out


def test_item_junk_item_is_one_scan_and_a_new_visit_is_another():
    a, junk = ["A"] * 5, [None]
    # Undebounced, the junk frame splits one visit in two scans.
    assert scans(Debouncer(stable_frames=1), a + junk + a) == [("A", 1), ("A", 7)]
    assert scans(Debouncer(stable_frames=2), a + junk + a) == [("A", 2)]
    # The item leaves the view (2 empty frames confirm "nothing") and comes back: 2 scans.
    assert scans(Debouncer(stable_frames=2), a + [None] * 2 + a) == [("A", 2), ("A", 9)]
    # Another item confirmed directly after the first: a scan each.
    assert scans(Debouncer(stable_frames=3), a + ["B"] * 3) == [("A", 3), ("B", 8)]
    # Flicker between two items never holds 3 frames: no scan at all.
    assert scans(Debouncer(stable_frames=3), ["A", "B"] * 5) == []


def test_a_scan_reports_the_mean_score_of_its_frames_and_respects_min_score():
    debouncer = Debouncer(stable_frames=3)
    results = [debouncer.update(answer("A", s), n) for n, s in enumerate((0.8, 0.9, 0.7), 1)]
    assert results[:2] == [None, None]
    assert (results[2].code, results[2].name) == ("A", "a")
    assert results[2].score == pytest.approx(0.8) and results[2].frames == 3
    # min_score above the gallery's threshold: 0.6 frames vote for nothing.
    strict = Debouncer(stable_frames=2, min_score=0.65)
    assert [strict.update(answer("A", s), n) for n, s in enumerate((0.6, 0.6, 0.6), 1)] == [
        None
    ] * 3
    assert strict.update(answer("A", 0.7), 4) is None
    assert strict.update(answer("A", 0.7), 5).score == pytest.approx(0.7)
    with pytest.raises(ValueError, match="at least 1"):
        Debouncer(stable_frames=0)


def test_json_lines_round_trip_with_schema_version():
    events = [
        Ready(source="picamera2:0", items=3, stable_frames=3, min_score=None, time=1.5),
        Scan(code="4711", name="Kölnisch Wasser", score=0.91, frames=3, frame=12, time=2.0),
        CameraLost(source="/dev/video0", reason="camera stopped", time=3.25),
    ]
    out = io.StringIO()
    stream = EventStream()
    stream.subscribe(JsonLinesWriter(out))
    for event in events:
        stream.publish(event)
    lines = out.getvalue().splitlines()
    assert json.loads(lines[1]) == {
        "schema": SCHEMA_VERSION,
        "event": "scan",
        "time": 2.0,
        "code": "4711",
        "name": "Kölnisch Wasser",
        "score": 0.91,
        "frames": 3,
        "frame": 12,
    }
    assert "Kölnisch" in lines[1]  # UTF-8 as is, not \\u escapes
    assert [parse_event(line) for line in lines] == events
    assert parse_event({**json.loads(lines[0]), "added_later": 1}) == events[0]
    with pytest.raises(ValueError, match="schema 2"):
        parse_event({**json.loads(lines[0]), "schema": 2})
    with pytest.raises(ValueError, match="unknown event type 'blink'"):
        parse_event({"schema": SCHEMA_VERSION, "event": "blink"})


def test_subscribers_join_leave_and_see_recent_history():
    stream = EventStream()
    first, second = [], []
    stream.subscribe(first.append)
    leave = stream.subscribe(second.append)
    stream.publish(Scan(code="A", name="a", score=1.0, frames=1, frame=1))
    leave()
    leave()  # twice is harmless
    stream.publish(Scan(code="B", name="b", score=1.0, frames=1, frame=2))
    assert [e.code for e in first] == ["A", "B"] and [e.code for e in second] == ["A"]
    assert [e.code for e in stream.recent(1)] == ["B"] and len(stream.recent()) == 2
    assert stream.recent(0) == []


def test_a_video_of_item_junk_frame_item_gives_one_event(tmp_path, db, reference):
    with Gallery.open(db, write=True) as gallery:
        gallery.set_threshold(0.99)  # the junk frame (an unknown item) scores below it
    item, junk = reference["images"][ITEM_IMAGES["A"]], reference["images"][UNKNOWN_IMAGE]
    # 10 fps: 100 ms per frame leaves the loop time to see every frame, the junk one included.
    video = write_video(tmp_path / "scan.avi", [item] * 8 + [junk] + [item] * 8, fps=10)
    args = ["run", "--model", INT8_MODEL, "--db", db, "--camera", video, "--headless"]
    args = [str(a) for a in args] + ["--roi", "1", "--retries", "1"]

    def events(*options) -> list[dict]:
        result = CliRunner().invoke(main, args + list(options))
        assert result.exit_code == 6, result.output  # the video ended: camera lost
        return [json.loads(line) for line in result.stdout.splitlines()]

    debounced = events()
    assert [e["event"] for e in debounced] == ["ready", "scan", "camera_lost"]
    assert debounced[1]["code"] == "A" and debounced[1]["frames"] == DEFAULT_STABLE_FRAMES
    # The control: undebounced, the junk frame splits the visit into two scans.
    undebounced = events("--stable-frames", "1")
    assert [(e["event"], e.get("frame")) for e in undebounced if e["event"] == "scan"] == [
        ("scan", 1),
        ("scan", 10),
    ]
