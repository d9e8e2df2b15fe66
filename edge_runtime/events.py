"""The scan event stream: what the live loop tells the world, as JSON lines, HTTP or SSE.

This module owns the stream (``docs/events.md`` documents it for consumers). Every front end
(``itemrec-edge run`` on stdout, ``itemrec-edge serve`` over HTTP) publishes the same events:

* ``ready``: the camera delivered its first frame, scanning has begun;
* ``scan``: one item was confirmed, i.e. recognised on ``stable_frames`` consecutive
  frames with at least ``min_score``. One event per confirmed item: the item has to leave
  the view (``stable_frames`` frames of something else) before it can be scanned again;
* ``camera_lost``: the camera stopped delivering frames; the process exits next (code 6).

Every event is a flat JSON object with ``schema`` (:data:`SCHEMA_VERSION`), ``event`` (its
type) and ``time`` (Unix seconds). Within one schema version fields and event types are only
ever added, so consumers ignore what they do not know.

Python API (stable; a front end needs only this)::

    events = EventStream()
    events.subscribe(JsonLinesWriter(sys.stdout))   # or any callable taking an Event
    debouncer = Debouncer(stable_frames=4, min_score=None)
    scan = debouncer.update(identification, frame_number)
    if scan:
        events.publish(scan)
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import ClassVar, TextIO

from itemrec.edge_runtime.lookup import Identification

SCHEMA_VERSION = 1
# Measured by benchmarks/bench_debounce.py (results/debounce.md): on 100 simulated scans of
# the sample (hand-held, 15 % motion-blurred frames), spurious scans + missed items for 2 / 3 /
# 4 / 5 frames were 72 / 19 / 10 / 12 (385 spurious scans undebounced); other draws of the
# frames gave 64 / 18 / 11 / 13, an earlier model 72 / 15 / 16 / 19. The whitened model of
# December's defaults, three draws scored together (the benchmark's default): 51 / 28 / 33 for
# 3 / 4 / 5 (docs/events.md).
DEFAULT_STABLE_FRAMES = 4
HISTORY = 100  # events kept for late subscribers (``EventStream.recent``)


def _now() -> float:
    return round(time.time(), 3)


@dataclass(frozen=True)
class Event:
    """One line of the stream; subclasses add their fields."""

    kind: ClassVar[str] = ""
    time: float = field(default_factory=_now, kw_only=True)

    def to_dict(self) -> dict:
        """``{"schema": 1, "event": kind, "time": ..., **fields}``: the JSON object sent."""
        fields = asdict(self)
        return {"schema": SCHEMA_VERSION, "event": self.kind, "time": fields.pop("time"), **fields}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)


@dataclass(frozen=True)
class Ready(Event):
    """The camera delivered its first frame: scanning has begun."""

    kind: ClassVar[str] = "ready"
    source: str
    items: int
    stable_frames: int
    min_score: float | None


@dataclass(frozen=True)
class Scan(Event):
    """One confirmed item: ``score`` is the mean best-item score over the ``frames``
    consecutive frames that confirmed it; ``frame`` is the loop's frame number then."""

    kind: ClassVar[str] = "scan"
    code: str
    name: str
    score: float
    frames: int
    frame: int


@dataclass(frozen=True)
class CameraLost(Event):
    """The camera stopped delivering frames; ``reason`` is the one-line error."""

    kind: ClassVar[str] = "camera_lost"
    source: str
    reason: str


EVENT_TYPES: dict[str, type[Event]] = {cls.kind: cls for cls in (Ready, Scan, CameraLost)}


def parse_event(line: str | dict) -> Event:
    """An event from its JSON line (or dict); unknown fields are ignored.

    Raises ``ValueError`` for another schema version or an unknown event type.
    """
    data = json.loads(line) if isinstance(line, str) else dict(line)
    if data.get("schema") != SCHEMA_VERSION:
        raise ValueError(f"event schema {data.get('schema')!r}, this reader knows {SCHEMA_VERSION}")
    cls = EVENT_TYPES.get(data.get("event"))
    if cls is None:
        raise ValueError(f"unknown event type {data.get('event')!r}")
    names = {f.name for f in cls.__dataclass_fields__.values()}
    return cls(**{k: v for k, v in data.items() if k in names})


class Debouncer:
    """Turn per-frame answers into one ``Scan`` per confirmed item.

    A frame votes for its recognised item when ``Identification.item`` is set (the gallery's
    threshold) and its score is at least ``min_score``; otherwise it votes for "nothing". A
    vote becomes the confirmed state after ``stable_frames`` consecutive equal votes; a
    ``Scan`` is returned when the confirmed state becomes an item. So item, junk, item is one
    scan (the junk frame never confirms "nothing"), and the same item is scanned again only
    after something else was confirmed in between.
    """

    def __init__(self, stable_frames: int = DEFAULT_STABLE_FRAMES, min_score: float | None = None):
        if stable_frames < 1:
            raise ValueError(f"stable_frames must be at least 1, got {stable_frames}")
        self.stable_frames = stable_frames
        self.min_score = min_score
        self.confirmed: str | None = None  # the item in view (None: nothing or unknown)
        self._vote: str | None = None
        self._run = 0
        self._score_sum = 0.0

    def update(self, result: Identification, frame: int) -> Scan | None:
        """Count this frame's vote; the ``Scan`` it confirms, if any."""
        item = result.item
        if item is not None and self.min_score is not None and item.score < self.min_score:
            item = None
        vote = item.code if item else None
        if vote != self._vote:
            self._vote, self._run, self._score_sum = vote, 0, 0.0
        self._run += 1
        self._score_sum += item.score if item else 0.0
        if self._run < self.stable_frames or vote == self.confirmed:
            return None
        self.confirmed = vote
        if item is None:
            return None
        mean = self._score_sum / self._run
        return Scan(
            code=item.code, name=item.name, score=round(mean, 4), frames=self._run, frame=frame
        )


Subscriber = Callable[[Event], None]


class EventStream:
    """Publish events to every subscriber, in order, from the thread that publishes.

    Subscribers must return quickly (a web server hands the event to its own loop, e.g. with
    ``loop.call_soon_threadsafe``). The last :data:`HISTORY` events are kept for subscribers
    that join late (``recent``).
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._subscribers: list[Subscriber] = []
        self._history: deque[Event] = deque(maxlen=HISTORY)

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Add ``subscriber``; returns a function that removes it again."""
        with self._lock:
            self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            with self._lock:
                if subscriber in self._subscribers:
                    self._subscribers.remove(subscriber)

        return unsubscribe

    def publish(self, event: Event) -> None:
        with self._lock:
            self._history.append(event)
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            subscriber(event)

    def recent(self, count: int = HISTORY) -> list[Event]:
        """The last ``count`` events published, oldest first."""
        with self._lock:
            return list(self._history)[-count:] if count > 0 else []


class JsonLinesWriter:
    """A subscriber writing each event as one JSON line to ``out``, flushed at once."""

    def __init__(self, out: TextIO):
        self.out = out

    def __call__(self, event: Event) -> None:
        self.out.write(event.to_json() + "\n")
        self.out.flush()
