"""Hand the scan event stream from the camera thread to the HTTP clients of the asyncio loop.

An ``EventHub`` subscribes to ``itemrec.edge_runtime.events.EventStream``. It numbers each
event (the SSE ``id``), keeps the last ones so that a client reconnecting with
``Last-Event-ID`` misses nothing, tracks the current confirmed item (the last ``scan``,
cleared by ``camera_lost``), and puts each event on the queue of every connected client with
``loop.call_soon_threadsafe``: the camera thread never waits for a slow client.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from dataclasses import dataclass

from itemrec.edge_runtime.events import HISTORY, CameraLost, Event, Scan

CLIENT_QUEUE = 1000  # events a client may fall behind by before it is dropped


@dataclass(frozen=True)
class Numbered:
    id: int
    event: Event

    def sse(self) -> str:
        """The event in the ``text/event-stream`` format: id, event type, one data line."""
        return f"id: {self.id}\nevent: {self.event.kind}\ndata: {self.event.to_json()}\n\n"


class Client:
    """One connected SSE client: its queue, and whether it fell too far behind."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.queue: asyncio.Queue[Numbered] = asyncio.Queue(CLIENT_QUEUE)
        self.overflowed = False

    def put(self, item: Numbered) -> None:  # runs in the event loop
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflowed = True


class EventHub:
    """An ``EventStream`` subscriber that numbers events and fans them out to SSE clients."""

    def __init__(self):
        self._lock = threading.Lock()
        self._next_id = 1
        self._history: deque[Numbered] = deque(maxlen=HISTORY)
        self._clients: set[Client] = set()
        self._current: Scan | None = None

    def __call__(self, event: Event) -> None:
        """Subscriber: called in the publishing thread."""
        with self._lock:
            numbered = Numbered(self._next_id, event)
            self._next_id += 1
            self._history.append(numbered)
            if isinstance(event, Scan):
                self._current = event
            elif isinstance(event, CameraLost):
                self._current = None
            clients = list(self._clients)
        for client in clients:
            try:
                client.loop.call_soon_threadsafe(client.put, numbered)
            except RuntimeError:  # that client's loop is closed: the server is stopping
                pass

    @property
    def current(self) -> Scan | None:
        """The last confirmed item, or None (nothing scanned yet, or the camera was lost)."""
        with self._lock:
            return self._current

    def scans(self, limit: int) -> list[Scan]:
        """The last ``limit`` scans, newest first."""
        with self._lock:
            scans = [n.event for n in self._history if isinstance(n.event, Scan)]
        return scans[::-1][:limit]

    def connect(self, last_id: int | None = None) -> tuple[Client, list[Numbered]]:
        """Register a client of the running loop; also return the events after ``last_id``."""
        client = Client(asyncio.get_running_loop())
        with self._lock:
            self._clients.add(client)
            backlog = [n for n in self._history if last_id is not None and n.id > last_id]
        return client, backlog

    def disconnect(self, client: Client) -> None:
        with self._lock:
            self._clients.discard(client)
