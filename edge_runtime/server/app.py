"""The HTTP API (``/v1``), ``/healthz`` and the browser page, as one FastAPI application.

Every answer is JSON; an error is ``{"error": "<one line>"}`` with the status of its kind
(400 bad input, 401 token, 404 unknown item, 413 too large, 503 camera or gallery busy, 500
a bug: logged on the server, never a traceback in the response). An identification is the
object ``itemrec-edge identify --json`` prints; events are those of ``docs/events.md``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import numpy as np
from fastapi import FastAPI, File, Form, Header, HTTPException, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from itemrec.edge_runtime import __version__
from itemrec.edge_runtime.errors import (
    CameraError,
    GalleryBusyError,
    ImageLoadError,
    InputError,
    ItemrecError,
)
from itemrec.edge_runtime.images import load_image
from itemrec.edge_runtime.server.camera import LiveCamera
from itemrec.edge_runtime.server.event_hub import EventHub
from itemrec.edge_runtime.server.recognizer import Recognizer
from itemrec.edge_runtime.wedge import untypeable

STATIC = Path(__file__).resolve().parent / "static"
KEEPALIVE_SECONDS = 15.0  # an SSE comment this often keeps proxies from closing the stream
# The live view is for aiming: 15 frames/s look fluid and cost one JPEG encoding each
# (benchmarks/results/serve.md gives its time), whatever the camera's rate.
STREAM_FPS = 15.0
MAX_CODE_LENGTH = 128
MAX_SHOTS = 20
log = logging.getLogger("itemrec.serve")


class Threshold(BaseModel):
    threshold: float | None = Field(
        description="Cosine below which an answer is 'unknown'; null accepts every answer.",
        ge=-1.0,
        le=1.0,
    )


def status_of(error: ItemrecError) -> int:
    if isinstance(error, GalleryBusyError | CameraError):
        return 503
    if isinstance(error, InputError):
        return 400
    return 500


def decode_upload(upload: UploadFile) -> np.ndarray:
    """The uploaded image as RGB; ``ImageLoadError`` names the upload, not ``<bytes>``."""
    data = upload.file.read()
    try:
        return load_image(data)
    except ImageLoadError as error:
        message = error.one_line().removeprefix("<bytes>: ")
        raise ImageLoadError(f"{upload.filename or 'upload'}: {message}") from None


def checked_code(code: str, typed: bool) -> str:
    code = code.strip()
    if not code or len(code) > MAX_CODE_LENGTH or not code.isprintable():
        raise InputError(f"an item code is 1 to {MAX_CODE_LENGTH} printable characters")
    missing = untypeable(code) if typed else ""
    if missing:
        raise InputError(f"the keyboard wedge (--type-codes) cannot type {missing!r}")
    return code


def create_app(
    recognizer: Recognizer,
    hub: EventHub,
    camera: LiveCamera | None = None,
    *,
    typed_codes: bool = False,
    stopping: Callable[[], bool] = lambda: False,
) -> FastAPI:
    """The application over a running recognizer, its event hub and (optionally) a camera."""
    app = FastAPI(
        title="itemrec-edge serve",
        version=__version__,
        description="Recognise products from a photo or a live camera, offline. "
        "Scan events: docs/events.md; errors: {'error': one line}.",
    )

    @app.exception_handler(ItemrecError)
    async def itemrec_error(request: Request, error: ItemrecError):
        headers = {"Retry-After": "1"} if isinstance(error, GalleryBusyError) else None
        return JSONResponse({"error": error.one_line()}, status_of(error), headers=headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException):
        return JSONResponse({"error": str(error.detail)}, error.status_code, error.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError):
        first = error.errors()[0] if error.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(part) for part in first["loc"] if part not in ("body", "query"))
        return JSONResponse({"error": f"{where}: {first['msg']}" if where else first["msg"]}, 400)

    @app.exception_handler(Exception)
    async def bug(request: Request, error: Exception):
        log.error("%s %s failed", request.method, request.url.path, exc_info=error)
        return JSONResponse({"error": "internal error (logged by the server)"}, 500)

    def need_camera() -> LiveCamera:
        if camera is None:
            raise HTTPException(404, "no camera: start the server with --camera")
        return camera

    # -- page and health --------------------------------------------------------------------
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict:
        """Model fingerprint, gallery size, camera state and frames per second (no token)."""
        status = recognizer.status()
        live = None
        if camera is not None:
            live = {
                "source": str(camera.source),
                "state": camera.state,
                "error": camera.error,
                "fps": round(camera.fps, 2),
            }
        healthy = live is None or live["state"] in ("starting", "running")
        return {
            "status": "ok" if healthy else "degraded",
            "version": __version__,
            **status,
            "camera": live,
            "fps": live["fps"] if live else 0.0,
        }

    # -- recognition ------------------------------------------------------------------------
    @app.post("/v1/identify", tags=["recognition"])
    def identify(
        image: Annotated[UploadFile, File(description="A photo (JPEG, PNG, WebP, ...).")],
        top_k: Annotated[int, Query(ge=1, le=100)] = 5,
    ) -> dict:
        """The top-k items for an uploaded photo, as ``itemrec-edge identify --json``."""
        rgb = decode_upload(image)
        result = recognizer.identify_image(rgb, top_k)
        return {"image": image.filename, **result.to_dict()}

    @app.get("/v1/current", tags=["recognition"])
    def current() -> dict | None:
        """The current confirmed item (the last ``scan`` event), or null."""
        scan = hub.current
        return scan.to_dict() if scan else None

    @app.get("/v1/scans", tags=["recognition"])
    def scans(limit: Annotated[int, Query(ge=1, le=100)] = 20) -> list[dict]:
        """The last scan events, newest first."""
        return [scan.to_dict() for scan in hub.scans(limit)]

    @app.get("/v1/events", tags=["recognition"], response_class=StreamingResponse)
    async def events(last_event_id: Annotated[str | None, Header()] = None):
        """Server-sent events: ``ready``, one ``scan`` per confirmed item, ``camera_lost``."""
        last = int(last_event_id) if last_event_id and last_event_id.isdigit() else None
        client, backlog = hub.connect(last)

        async def stream():
            try:
                yield "retry: 2000\n\n"
                for numbered in backlog:
                    yield numbered.sse()
                quiet = 0.0
                while not stopping() and not client.overflowed:
                    try:
                        numbered = await asyncio.wait_for(client.queue.get(), 1.0)
                    except TimeoutError:
                        quiet += 1.0
                        if quiet >= KEEPALIVE_SECONDS:
                            quiet = 0.0
                            yield ": keep-alive\n\n"
                        continue
                    quiet = 0.0
                    yield numbered.sse()
            finally:
                hub.disconnect(client)

        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)

    # -- camera -----------------------------------------------------------------------------
    @app.get("/v1/snapshot.jpg", tags=["camera"], response_class=Response)
    def snapshot():
        """The newest frame with the aiming square and the answer drawn on."""
        live = need_camera()
        frame = live.next_frame(timeout=5.0)
        if frame is None:
            raise HTTPException(503, f"no frame from camera {live.source!r}")
        return Response(live.jpeg(frame), media_type="image/jpeg")

    @app.get("/v1/stream.mjpg", tags=["camera"], response_class=StreamingResponse)
    def stream_mjpg():
        """The live view as MJPEG (``multipart/x-mixed-replace``), for an ``<img>``."""
        live = need_camera()

        async def frames():
            after, period = 0, 1.0 / STREAM_FPS
            loop = asyncio.get_running_loop()
            while not stopping():
                began = loop.time()
                frame = await run_in_threadpool(live.next_frame, after, 1.0)
                if frame is None:
                    continue
                after = frame.number
                data = await run_in_threadpool(live.jpeg, frame)
                head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(data)}\r\n\r\n"
                yield head.encode() + data + b"\r\n"
                await asyncio.sleep(max(0.0, period - (loop.time() - began)))

        media = "multipart/x-mixed-replace; boundary=frame"
        return StreamingResponse(frames(), media_type=media, headers={"Cache-Control": "no-cache"})

    # -- gallery ----------------------------------------------------------------------------
    @app.get("/v1/items", tags=["gallery"])
    def items() -> dict:
        """The gallery as ``itemrec-edge gallery list --json``: model, threshold, items."""
        return recognizer.listing()

    @app.post("/v1/items", tags=["gallery"], status_code=201)
    def enroll(
        code: Annotated[str, Form(description="Item code (the stock system's).")],
        name: Annotated[str | None, Form(description="Item name; kept if omitted.")] = None,
        photos: Annotated[
            list[UploadFile] | None, File(description="1..N photos of the item.")
        ] = None,
        from_camera: Annotated[bool, Form(description="Take the photos with the camera.")] = False,
        shots: Annotated[int, Form(ge=1, le=MAX_SHOTS)] = 5,
        interval: Annotated[float, Form(ge=0.0, le=5.0)] = 0.5,
    ) -> dict:
        """Enrol an item (new, or more photos of a known one) in one transaction."""
        code = checked_code(code, typed_codes)
        photos = [photo for photo in photos or [] if photo.filename or photo.size]
        if bool(photos) == from_camera:
            raise InputError("send photos or from_camera=true, not both and not neither")
        if from_camera:
            live = need_camera()
            images = live.shots(shots, interval)
            sources = [f"camera:{live.source}"] * len(images)
        else:
            images = [decode_upload(photo) for photo in photos]
            sources = [f"upload:{photo.filename or 'photo'}" for photo in photos]
        count = recognizer.enroll(code, (name or "").strip() or None, images, sources)
        return {"code": code, "added": len(images), "representatives": count}

    @app.delete("/v1/items/{code:path}", tags=["gallery"], status_code=204)
    def remove(code: str) -> Response:
        """Remove an item and all its photos' embeddings; 404 if there is no such item."""
        if not recognizer.remove(code):
            raise HTTPException(404, f"no item with code {code!r}")
        return Response(status_code=204)

    @app.get("/v1/threshold", tags=["gallery"])
    def get_threshold() -> Threshold:
        return Threshold(threshold=recognizer.threshold())

    @app.put("/v1/threshold", tags=["gallery"])
    def put_threshold(body: Threshold) -> Threshold:
        """Store the unknown-item threshold in the gallery (takes effect at once)."""
        return Threshold(threshold=recognizer.set_threshold(body.threshold))

    return app
