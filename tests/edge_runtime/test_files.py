"""Safe reading and atomic writing: FIFOs, devices and size limits; the umask's mode."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from itemrec.edge_runtime.errors import InputError, ModelError
from itemrec.edge_runtime.files import atomic_path, read_regular_file, shown, write_bytes_atomically


def test_shown_keeps_printable_names_and_escapes_the_rest():
    assert shown("café/日本.jpg") == "café/日本.jpg"
    assert shown("two\nlines.png") == "two\\nlines.png"
    assert shown(os.fsdecode(b"bad_\xff.png")) == "bad_\\xff.png"
    assert shown(b"raw\tbytes") == "raw\\tbytes"


def test_a_fifo_is_refused_at_once_instead_of_blocking(tmp_path):
    fifo = tmp_path / "x.jpg"
    os.mkfifo(fifo)
    start = time.monotonic()
    with pytest.raises(InputError, match=r"x\.jpg: not a regular file"):
        read_regular_file(fifo, 100)
    assert time.monotonic() - start < 1.0


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p.mkdir(), "is a directory"),
        (lambda p: os.symlink("/dev/zero", p), "not a regular file"),
        (lambda p: os.symlink(p.name, p), "Too many levels of symbolic links"),
        (lambda p: p.write_bytes(b"x" * 101), "101 bytes is more than a model may have"),
    ],
    ids=["directory", "device", "symlink loop", "too large"],
)
def test_what_is_not_a_small_regular_file_names_the_path(tmp_path, make, message):
    path = tmp_path / "model.tflite"
    make(path)
    with pytest.raises(ModelError, match=f"model.tflite: {message}"):
        read_regular_file(path, 100, ModelError, "a model")


def test_atomic_writes_get_the_umask_mode_not_mkstemps_0600(tmp_path):
    out = tmp_path / "gallery.bin"
    code = (
        "import os, sys; os.umask(0o027);"
        "from itemrec.edge_runtime.files import write_bytes_atomically as w;"
        "w(sys.argv[1], b'data')"
    )
    subprocess.run([sys.executable, "-c", code, str(out)], check=True)
    assert out.read_bytes() == b"data" and out.stat().st_mode & 0o777 == 0o640
    write_bytes_atomically(out, b"new")
    assert out.read_bytes() == b"new" and [p.name for p in tmp_path.iterdir()] == ["gallery.bin"]


def test_atomic_path_never_overwrites_without_replace_and_cleans_up(tmp_path):
    target = tmp_path / "g.db"
    target.write_bytes(b"someone else's")
    with pytest.raises(FileExistsError):
        with atomic_path(target, replace=False) as temp:
            temp.write_bytes(b"mine")
    assert target.read_bytes() == b"someone else's"
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "other.db") as temp:
            temp.write_bytes(b"half")
            raise RuntimeError("killed halfway")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.db"]
