"""Wire the recognizer, the live camera, the event stream and the application; run uvicorn.

The process prints the same JSON event lines on stdout as ``itemrec-edge run --headless``
(for the journal) and, on stderr, one line with the page's address once it listens. SIGTERM
and Ctrl-C stop it cleanly with exit 0; a bug in the camera thread stops it with the
traceback (exit 1), so that systemd restarts it.
"""

from __future__ import annotations

import ipaddress
import signal
import socket
import sys
from dataclasses import dataclass

import uvicorn

from itemrec.edge_runtime.camera_sources import DEFAULT_RESOLUTION
from itemrec.edge_runtime.errors import InputError
from itemrec.edge_runtime.events import EventStream, JsonLinesWriter
from itemrec.edge_runtime.live import LiveOptions
from itemrec.edge_runtime.server.app import create_app
from itemrec.edge_runtime.server.camera import LiveCamera
from itemrec.edge_runtime.server.event_hub import EventHub
from itemrec.edge_runtime.server.recognizer import Recognizer
from itemrec.edge_runtime.server.security import BearerToken, UploadLimit
from itemrec.edge_runtime.wedge import KeyboardWedge, types_scans

GRACEFUL_SHUTDOWN_SECONDS = 3


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8080
    token: str | None = None
    camera: str | None = None
    resolution: tuple[int, int] = DEFAULT_RESOLUTION
    retries: int = 5
    threads: int | None = None
    type_codes: bool = False
    max_upload_bytes: int = 32 * 2**20


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and the addresses 127.0.0.0/8 and ::1."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host:port`` (port 0: any free port)."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family, backlog=128)
    except OSError as error:
        reason = error.strerror or str(error)
        raise InputError(f"cannot listen on {host}:{port}: {reason}") from None


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def serve(model_path, db_path, options: ServeOptions, live: LiveOptions) -> None:
    """Run the server until SIGTERM or Ctrl-C (see the module docstring)."""
    if options.token is None and not is_loopback(options.host):
        raise InputError(f"{options.host} is not a loopback address: give --token or --token-file")
    recognizer = Recognizer(model_path, db_path, options.threads)
    closing = [recognizer.close]
    try:
        events, hub = EventStream(), EventHub()
        events.subscribe(JsonLinesWriter(sys.stdout))
        events.subscribe(hub)
        if options.type_codes:
            wedge = KeyboardWedge()
            closing.append(wedge.close)
            events.subscribe(types_scans(wedge))
        crashed: list[BaseException] = []
        server: uvicorn.Server | None = None

        def crash(error: BaseException) -> None:
            crashed.append(error)
            if server is not None:
                server.should_exit = True

        camera = None
        if options.camera is not None:
            camera = LiveCamera(
                options.camera,
                recognizer,
                events,
                live,
                options.retries,
                options.resolution,
                on_crash=crash,
            )
            closing.append(camera.stop)
        app = create_app(
            recognizer,
            hub,
            camera,
            typed_codes=options.type_codes,
            stopping=lambda: server is not None and server.should_exit,
        )
        app = UploadLimit(app, options.max_upload_bytes)
        if options.token is not None:
            app = BearerToken(app, options.token)
        sock = listen(options.host, options.port)
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        )
        server = uvicorn.Server(config)
        if camera is not None:
            camera.start()
        print(f"itemrec-edge serve: listening on {url_of(sock)}", file=sys.stderr, flush=True)
        _run_until_stopped(server, sock)
    finally:
        for close in reversed(closing):
            close()
    if crashed:
        raise crashed[0]


def _run_until_stopped(server: uvicorn.Server, sock: socket.socket) -> None:
    """``server.run``; uvicorn re-raises the signal that stopped it: SIGTERM then does nothing
    more (a clean stop is exit 0), and Ctrl-C's KeyboardInterrupt is swallowed."""
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
