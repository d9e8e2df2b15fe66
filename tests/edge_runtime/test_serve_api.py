"""``itemrec-edge serve``: the HTTP API of a real server process on loopback, a real model
(the tiny int8 .tflite), a real SQLite gallery and a video file as its camera."""

from __future__ import annotations

import concurrent.futures
import json
import shutil
import sqlite3

import cv2
import httpx
import numpy as np
import pytest
from click.testing import CliRunner
from edge_helpers import INT8_MODEL, ITEM_IMAGES, UNKNOWN_IMAGE
from serve_helpers import FRAME_SIZE, NAMES, Server, camera_video, make_gallery, photo

from itemrec.edge_runtime.camera import roi_box
from itemrec.edge_runtime.cli import main
from itemrec.edge_runtime.errors import ExitCode


def no_traceback(response: httpx.Response) -> None:
    if response.headers.get("content-type", "").startswith(("text/event-stream", "multipart/")):
        return  # endless streams
    response.read()
    assert b"Traceback" not in response.content and b'File "' not in response.content


@pytest.fixture(scope="module")
def files(tmp_path_factory, reference):
    root = tmp_path_factory.mktemp("serve")
    images = reference["images"]
    return {
        "root": root,
        "db": make_gallery(root / "gallery.db", images),
        # Item A in front of the camera for longer than this module runs.
        "video": camera_video(root / "a.avi", images[ITEM_IMAGES["A"]], seconds=90),
        **{code: photo(root / f"{code}.png", images[i]) for code, i in ITEM_IMAGES.items()},
        "D": photo(root / "D.png", images[3]),
        "unknown": photo(root / "unknown.png", images[UNKNOWN_IMAGE]),
    }


@pytest.fixture(scope="module")
def server(files):
    with Server(files["db"], "--max-upload-mb", 1, camera=files["video"]) as running:
        yield running
        assert running.stop() == 0, "".join(running.stderr)
    assert "Traceback" not in "".join(running.stderr)


@pytest.fixture
def http(server):
    with server.client(event_hooks={"response": [no_traceback]}) as client:
        yield client


def cli(*args):
    return CliRunner().invoke(main, [str(arg) for arg in args])


def upload(path, field="image"):
    return {field: (path.name, path.read_bytes(), "image/png")}


def test_identify_is_the_cli_json(http, files):
    response = http.post("/v1/identify", files=upload(files["B"]), params={"top_k": 2})
    assert response.status_code == 200
    command = cli(
        "identify", "--json", "-k", 2, "--model", INT8_MODEL, "--db", files["db"], files["B"]
    )
    assert command.exit_code == 0, command.output
    expected = json.loads(command.output.splitlines()[-1])
    assert response.json() == {**expected, "image": "B.png"}
    assert response.json()["code"] == "B" and len(response.json()["top"]) == 2


def test_camera_scans_reach_current_events_and_healthz(server, http):
    scan = server.wait_for_event("scan")
    assert (scan["schema"], scan["code"], scan["name"]) == (1, "A", "Apple juice")
    assert http.get("/v1/current").json()["code"] == "A"
    assert http.get("/v1/scans").json()[0]["code"] == "A"
    # SSE: a client resuming from id 0 gets the backlog (ready, then the scan) as events.
    with http.stream("GET", "/v1/events", headers={"Last-Event-ID": "0"}) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        kinds, data = [], []
        for line in stream.iter_lines():
            if line.startswith("event: "):
                kinds.append(line.removeprefix("event: "))
            if line.startswith("data: "):
                data.append(json.loads(line.removeprefix("data: ")))
            if "scan" in kinds and len(data) == len(kinds):
                break
    assert kinds[:2] == ["ready", "scan"] and data[1]["code"] == "A"
    health = http.get("/healthz").json()
    assert health["status"] == "ok" and health["camera"]["state"] == "running"
    assert health["gallery"]["items"] == 3 and len(health["model"]["fingerprint"]) == 64
    assert 3 < health["fps"] < 30  # the video plays at 10 frames/s


def test_snapshot_and_stream_show_the_aiming_square(http):
    response = http.get("/v1/snapshot.jpg")
    assert response.headers["content-type"] == "image/jpeg"
    frame = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_COLOR)
    assert frame.shape == (FRAME_SIZE[1], FRAME_SIZE[0], 3)
    # The square the model sees (--roi 0.6) is drawn green: the item is known.
    top, left, height, width = roi_box(frame.shape[0], frame.shape[1], 0.6)
    for y, x in ((top, left + width // 2), (top + height // 2, left), (top + height - 1, left + 9)):
        blue, green, red = frame[y, x].astype(int)
        assert abs(green - 200) < 40 and blue < 60 and red < 60, (y, x, frame[y, x])
    outside = frame[top - 6, left + width // 2].astype(int)
    assert abs(outside - 90).max() < 20  # the grey shelf
    with http.stream("GET", "/v1/stream.mjpg") as stream:
        assert stream.headers["content-type"].startswith("multipart/x-mixed-replace")
        head = b""
        for chunk in stream.iter_bytes():
            head += chunk
            if head.count(b"\xff\xd9") >= 1:
                break
    assert head.startswith(b"--frame\r\nContent-Type: image/jpeg\r\n")
    jpeg = head[head.index(b"\xff\xd8") : head.index(b"\xff\xd9") + 2]
    assert cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR).shape == frame.shape


def test_enrol_identify_delete_without_restart(http, files):
    code = "D-12/3.x"  # a slash in the code: the path takes it URL-encoded
    photos = [("photos", (f"d{n}.png", files["D"].read_bytes())) for n in (1, 2)]
    response = http.post("/v1/items", data={"code": code, "name": "Dates"}, files=photos)
    assert response.status_code == 201
    assert response.json() == {"code": code, "added": 2, "representatives": 2}
    listed = {i["code"]: i for i in http.get("/v1/items").json()["items"]}
    assert listed[code] == {"code": code, "name": "Dates", "attributes": {}, "representatives": 2}
    best = http.post("/v1/identify", files=upload(files["D"])).json()
    assert (best["code"], best["name"]) == (code, "Dates") and best["score"] > 0.999
    assert http.delete(f"/v1/items/{httpx.URL(code).raw_path.decode()}").status_code == 204
    gone = http.delete("/v1/items/D-12%2F3.x")
    assert gone.status_code == 404 and "no item with code" in gone.json()["error"]
    assert http.post("/v1/identify", files=upload(files["D"])).json()["code"] != code


def test_a_change_by_another_process_counts_at_once(http, files, server):
    scans_before = len(server.events())
    add = ["gallery", "add", "--model", INT8_MODEL, "--db", files["db"], "--code", "E"]
    command = cli(*add, "--name", "Eggs", files["unknown"])
    assert command.exit_code == 0, command.output
    assert http.post("/v1/identify", files=upload(files["unknown"])).json()["code"] == "E"
    assert http.delete("/v1/items/E").status_code == 204
    health = http.get("/healthz").json()  # the camera loop never stopped
    assert health["camera"]["state"] == "running" and health["fps"] > 3
    assert not any(e["event"] == "camera_lost" for e in server.events()[scans_before:])


def test_threshold_makes_answers_unknown(http, files):
    assert http.put("/v1/threshold", json={"threshold": 0.999}).json() == {"threshold": 0.999}
    answer = http.post("/v1/identify", files=upload(files["unknown"])).json()
    assert answer["code"] is None and answer["threshold"] == 0.999 and answer["top"]
    assert http.get("/v1/threshold").json() == {"threshold": 0.999}
    bad = http.put("/v1/threshold", json={"threshold": 2})
    assert bad.status_code == 400 and "threshold" in bad.json()["error"]
    assert http.put("/v1/threshold", json={"threshold": None}).json() == {"threshold": None}


def test_bad_uploads_get_400_with_the_loaders_one_line(http, files):
    text = http.post("/v1/identify", files={"image": ("notes.txt", b"not an image")})
    assert text.status_code == 400
    assert text.json() == {"error": "notes.txt: not a JPEG, PNG, GIF, BMP, WebP or TIFF image"}
    # A 400-byte PNG whose header claims 100000 x 100000 pixels: refused before decoding.
    png = bytearray(cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes())
    png[16:24] = (100_000).to_bytes(4, "big") * 2
    bomb = http.post("/v1/identify", files={"image": ("bomb.png", bytes(png))})
    assert bomb.status_code == 400
    assert bomb.json()["error"].startswith("bomb.png: 100000x100000 pixels exceeds the limit")
    # One bad photo among good ones: 400 and nothing enrolled.
    photos = [("photos", ("ok.png", files["D"].read_bytes())), ("photos", ("bad.jpg", b"\xff"))]
    refused = http.post("/v1/items", data={"code": "F"}, files=photos)
    assert refused.status_code == 400 and refused.json()["error"].startswith("bad.jpg: ")
    assert "F" not in {i["code"] for i in http.get("/v1/items").json()["items"]}
    missing = http.post("/v1/items", data={"code": "F"})
    assert missing.status_code == 400 and "photos or from_camera" in missing.json()["error"]
    no_code = http.post("/v1/items", files=upload(files["D"], "photos"))
    assert no_code.status_code == 400 and no_code.json()["error"].startswith("code: ")


def test_uploads_are_capped_at_413(http):
    big = b"\0" * (2 * 2**20)  # the server runs with --max-upload-mb 1
    sized = http.post("/v1/identify", files={"image": ("big.png", big)})
    assert sized.status_code == 413 and "limit of 1 MiB" in sized.json()["error"]
    chunked = http.post("/v1/identify", content=iter([big[: 2**19]] * 4))
    assert chunked.status_code == 413


def test_enrol_from_the_camera_now(http, files):
    response = http.post(
        "/v1/items", data={"code": "G", "name": "Grapes", "from_camera": "true", "shots": 3}
    )
    assert response.status_code == 201 and response.json()["representatives"] == 3
    # The camera shows item A: G's three embeddings are A's (cosine ~1 to A's photo).
    top = http.post("/v1/identify", files=upload(files["A"])).json()["top"]
    assert {t["code"] for t in top[:2]} == {"A", "G"} and top[1]["score"] > 0.9
    assert http.delete("/v1/items/G").status_code == 204


def test_concurrent_enrolments_never_lose_an_item(http, files):
    codes = [f"P{n:02d}" for n in range(24)]
    image = files["D"].read_bytes()

    def enrol(code):
        files_ = {"photos": (f"{code}.png", image)}
        return http.post("/v1/items", data={"code": code, "name": code}, files=files_)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = [r.status_code for r in pool.map(enrol, codes)]
        # ...and half of them deleted again while the others are still being enrolled.
        deletions = list(pool.map(lambda c: http.delete(f"/v1/items/{c}"), codes[::2]))
    assert statuses == [201] * len(codes)
    assert [d.status_code for d in deletions] == [204] * len(codes[::2])
    listed = {i["code"] for i in http.get("/v1/items").json()["items"]}
    assert listed == set(NAMES) | set(codes[1::2])
    with sqlite3.connect(files["db"]) as db:
        rows = db.execute("SELECT code FROM items WHERE code LIKE 'P%'").fetchall()
    assert sorted(code for (code,) in rows) == codes[1::2]
    for code in codes[1::2]:
        assert http.delete(f"/v1/items/{code}").status_code == 204


def test_token_guards_everything_but_healthz_and_the_page(files, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("s3cret\n")
    with Server(files["db"], "--token-file", token_file, token="s3cret") as server:
        with httpx.Client(base_url=server.url, timeout=30) as anonymous:
            assert anonymous.get("/healthz").status_code == 200
            assert anonymous.get("/").status_code == 200
            assert anonymous.get("/static/app.js").status_code == 200
            for path in ("/v1/items", "/v1/current", "/openapi.json", "/docs"):
                refused = anonymous.get(path)
                assert (
                    refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
                )
            wrong = anonymous.get("/v1/items", headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401 and wrong.json()["error"].startswith("wrong token")
        with httpx.Client(base_url=server.url, cookies={"itemrec_token": "s3cret"}) as page:
            assert page.get("/v1/items").status_code == 200  # what the page's <img> sends
        with server.client() as authorised:
            assert len(authorised.get("/v1/items").json()["items"]) == 3
            assert authorised.get("/openapi.json").json()["info"]["title"] == "itemrec-edge serve"
            # No camera: the live endpoints say so.
            assert authorised.get("/v1/snapshot.jpg").status_code == 404
            assert authorised.get("/healthz").json()["camera"] is None
        assert server.stop() == 0


def test_other_addresses_need_a_token_and_the_camera_must_open(files, tmp_path):
    args = ["serve", "--model", INT8_MODEL, "--db", files["db"]]
    exposed = cli(*args, "--host", "0.0.0.0")
    assert exposed.exit_code == ExitCode.USAGE and "--token" in exposed.output
    no_camera = cli(*args, "--port", "0", "--camera", tmp_path / "x.avi")
    assert no_camera.exit_code == ExitCode.CAMERA_UNAVAILABLE
    assert "cannot open camera" in no_camera.output


def test_a_lost_camera_is_reopened_and_the_api_stays_up(tmp_path, reference, files):
    db = shutil.copy(files["db"], tmp_path / "g.db")
    video = camera_video(tmp_path / "short.avi", reference["images"][ITEM_IMAGES["C"]], 1.0)
    with Server(db, "--retries", 0, camera=video) as server:
        lost = server.wait_for_event("camera_lost")
        after = server.events().index(lost)
        again = server.wait_for_event("ready", after=after)  # reopened: the file plays again
        assert again["source"] == str(video) and lost["reason"]
        with server.client() as http:
            assert http.post("/v1/identify", files=upload(files["C"])).json()["code"] == "C"
        assert server.stop() == 0


def test_a_broken_gallery_is_a_500_without_traceback(tmp_path, files):
    db = shutil.copy(files["db"], tmp_path / "g.db")
    with Server(db) as server, server.client() as http:
        assert http.get("/v1/items").status_code == 200
        # The file is replaced under the running server by something that is no database.
        for suffix in ("", "-wal", "-shm"):
            path = tmp_path / f"g.db{suffix}"
            if path.exists():
                path.write_bytes(b"garbage " * 1000)
        broken = http.get("/v1/items")
        assert broken.status_code >= 500 and set(broken.json()) == {"error"}
        no_traceback(broken)
        error = broken.json()["error"]
        assert len(error.splitlines()) == 1 and "g.db: corrupt" in error
        assert "rebuild from the images" in error
        server.stop()
    assert "Traceback" not in "".join(server.stderr)  # an expected error, not a bug
