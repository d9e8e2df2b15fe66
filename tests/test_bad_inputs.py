"""Every file of the bad-input corpus (``tests/bad_inputs.py``), through the real commands.

One parametrised test, one parameter per case. The commands run once per group of cases, as
real ``itemrec-edge`` processes on a device without TensorFlow (imports of it are blocked and
logged); each case then checks its part of their output: no traceback, exactly one line naming
the file (with the reason) when it is refused and none when it is used, the documented exit
code, the other inputs processed, the gallery's bytes unchanged by a refusal or a read-only
command, and each process's peak memory (``wait4``'s ``ru_maxrss``) below :data:`PEAK_MB`.
The torch-pickle cases go to the weights reader itself, in a process of their own.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from bad_inputs import (
    BAD_INPUT,
    FOLDER_CASES,
    GALLERY_CASES,
    IMAGE_CASES,
    MODEL,
    MODEL_CASES,
    NAMES_CASES,
    PICKLE_CASES,
    Corpus,
    write_corpus,
)

from itemrec.edge_runtime.files import shown
from itemrec.edge_runtime.gallery import Gallery

#: Peak resident memory of any one command (MB). A bomb decoded in full would take 0.9-2.4 GB;
#: the commands themselves need about 110 MB.
PEAK_MB = 300
TIMEOUT_S = 120
REPO = Path(__file__).resolve().parents[1]
BLOCKER = REPO / "tests" / "edge_runtime" / "no_tensorflow"
TORCH_PICKLE = REPO / "train" / "backbones" / "torch_pickle.py"


@dataclass
class Run:
    """One finished process: what it printed, how it ended, its peak memory."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    peak_mb: float

    def lines_naming(self, path, stream: str = "stderr") -> list[str]:
        text = self.stderr if stream == "stderr" else self.stdout
        return [line for line in text.splitlines() if f"{shown(path)}: " in line]

    def describe(self) -> str:
        return f"{' '.join(self.args[1:4])}... -> {self.returncode}\n{self.stderr[-3000:]}"


# Runs the command given after the report path and writes its exit code and peak memory
# there. Linux keeps a process's peak across exec, and a child forked from pytest (1.4 GB once
# TensorFlow is loaded) would inherit pytest's: this small launcher forks the command instead.
MEASURE = """
import json, os, subprocess, sys, time
report, timeout, command = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
child = subprocess.Popen(command)
deadline = time.monotonic() + timeout
while True:
    pid, status, usage = os.wait4(child.pid, os.WNOHANG)
    if pid:
        break
    if time.monotonic() > deadline:
        child.kill()
    time.sleep(0.01)
result = {"returncode": os.waitstatus_to_exitcode(status), "maxrss_kb": usage.ru_maxrss}
with open(report, "w") as handle:
    json.dump(result, handle)
"""


def run(args, env, timeout=TIMEOUT_S) -> Run:
    """Run ``args``; its peak memory is ``wait4``'s for exactly that process."""
    args = [str(a) for a in args]
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report.json"
        out, err = Path(folder) / "out", Path(folder) / "err"
        with open(out, "wb") as stdout, open(err, "wb") as stderr:
            subprocess.run(
                [sys.executable, "-c", MEASURE, str(report), str(timeout), *args],
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                env=env,
                check=True,
                timeout=timeout + 30,
            )
        measured = json.loads(report.read_text())
        stdout_text = out.read_bytes().decode("utf-8", "replace")
        stderr_text = err.read_bytes().decode("utf-8", "replace")
    return Run(args, measured["returncode"], stdout_text, stderr_text, measured["maxrss_kb"] / 1024)


def build_args(images, db, *extra, model=MODEL) -> list:
    """The arguments of ``itemrec-edge gallery build``."""
    return ["gallery", "build", "--model", model, "--images", images, "--db", db, *extra]


def digest(path: Path) -> str | None:
    """SHA-256 of the file's bytes (None when it is absent or not a regular file)."""
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


class Results:
    """Runs the commands of every group once and keeps what each case needs."""

    def __init__(self, root: Path):
        self.corpus: Corpus = write_corpus(root / "corpus")
        self.tmp = root / "work"
        self.tmp.mkdir()
        self.import_log = root / "tensorflow_imports.log"
        self.env = dict(
            os.environ,
            PYTHONPATH=os.pathsep.join([str(BLOCKER), os.environ.get("PYTHONPATH", "")]),
            ITEMREC_IMPORT_LOG=str(self.import_log),
        )
        self.edge = [str(Path(sys.executable).with_name("itemrec-edge"))]
        self.runs: dict[str, list[Run]] = {}  # case id -> the runs that saw it
        self.gallery_digests: dict[tuple[str, str], tuple] = {}

    def edge_run(self, *args) -> Run:
        return run(self.edge + list(args), self.env)

    def copy_gallery(self, name: str) -> Path:
        path = self.tmp / name
        shutil.copyfile(self.corpus.gallery, path)
        return path

    def seen(self, case_id: str, *runs: Run) -> None:
        self.runs.setdefault(case_id, []).extend(runs)

    # -- the groups ----------------------------------------------------------------------
    def images(self) -> None:
        good, images = self.corpus.good, self.corpus.images
        model = ["--model", MODEL]
        identify = self.edge_run(
            "identify", *model, "--db", self.corpus.gallery, good[0], *images.values(), good[1]
        )
        refused = [images[c.id] for c in IMAGE_CASES if not c.usable]
        bad_only_db = self.copy_gallery("bad_only.db")
        before = digest(bad_only_db)
        bad_only = self.edge_run("enroll", *model, "--db", bad_only_db, "--code", "BAD", *refused)
        self.bad_only_unchanged = digest(bad_only_db) == before
        mixed = self.edge_run(
            "enroll",
            *model,
            "--db",
            self.copy_gallery("mixed.db"),
            "--code",
            "MIX",
            good[1],
            *images.values(),
        )
        self.build_db = self.tmp / "built.db"
        build = self.edge_run(*build_args(self.corpus.class_folders, self.build_db))
        self.image_runs = {"identify": identify, "bad_only": bad_only, "mixed": mixed}
        self.build = build
        for case in IMAGE_CASES:
            self.seen(f"image-{case.id}", identify, mixed, *([] if case.usable else [bad_only]))
            if case.in_folder:
                self.seen(f"image-{case.id}", build)
        for case in FOLDER_CASES:
            self.seen(f"folder-{case.id}", build)

    def galleries(self) -> None:
        good = self.corpus.good
        folder = self.tmp / "small_folders"
        (folder / "Z").mkdir(parents=True)
        shutil.copyfile(good[2], folder / "Z" / "z.png")
        for case in GALLERY_CASES:
            path = self.corpus.galleries[case.id]
            holder = _hold_write_lock(path) if case.locked else None
            try:
                commands = {
                    "identify": ["identify", "--model", MODEL, "--db", path, good[0]],
                    "list": ["gallery", "list", "--db", path],
                    "export": ["gallery", "export", "--db", path, "--out", self.tmp / "g.bin"],
                    "enroll": ["enroll", "--model", MODEL, "--db", path, "--code", "NEW", good[0]],
                    "build": build_args(folder, path),
                }
                for command, args in commands.items():
                    before = digest(path)
                    result = self.edge_run(*args)
                    result.command = command
                    self.gallery_digests[(case.id, command)] = (before, digest(path))
                    self.seen(f"gallery-{case.id}", result)
            finally:
                if holder is not None:
                    holder.kill()
                    holder.wait()

    def names(self) -> None:
        folder = self.tmp / "named_folders"
        (folder / "G").mkdir(parents=True)
        shutil.copyfile(self.corpus.good[0], folder / "G" / "g.png")
        for case in NAMES_CASES:
            db = self.tmp / f"names-{case.id}.db"
            result = self.edge_run(*build_args(folder, db, "--names", self.corpus.names[case.id]))
            result.db = db
            self.seen(f"names-{case.id}", result)

    def models(self) -> None:
        good = self.corpus.good
        for case in MODEL_CASES:
            model = self.corpus.models[case.id]
            db = self.copy_gallery(f"model-{case.id}.db")
            before = digest(db)
            runs = [
                self.edge_run("identify", "--model", model, "--db", db, good[0]),
                self.edge_run("enroll", "--model", model, "--db", db, "--code", "X", good[0]),
                self.edge_run(
                    *build_args(
                        self.corpus.class_folders, self.tmp / f"model-{case.id}-new.db", model=model
                    )
                ),
            ]
            runs[0].unchanged = digest(db) == before
            self.seen(f"model-{case.id}", *runs)

    def pickles(self) -> None:
        for case in PICKLE_CASES:
            path = self.corpus.pickles[case.id]
            self.seen(f"pickle-{case.id}", run([sys.executable, "-c", READ_PICKLE, path], self.env))


# Loads the weights reader from its file: the package would import TensorFlow (600 MB), and
# the bound is on the reader. Prints {"tensors": N} or {"error": the ModelError's line}.
READ_PICKLE = f"""
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("torch_pickle", {str(TORCH_PICKLE)!r})
reader = sys.modules["torch_pickle"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(reader)
from itemrec.edge_runtime.errors import ModelError
try:
    print(json.dumps({{"tensors": len(reader.read_legacy_state_dict(sys.argv[1]))}}))
except ModelError as error:
    print(json.dumps({{"error": error.one_line()}}))
"""

HOLD_LOCK = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(600)
"""


def _hold_write_lock(path: Path) -> subprocess.Popen:
    """Another process that holds the gallery's write lock until killed."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "locked"
    return holder


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Results:
    found = Results(tmp_path_factory.mktemp("bad_inputs"))
    for group in (found.images, found.galleries, found.names, found.models, found.pickles):
        group()
    assert not found.import_log.exists(), f"tried to import {found.import_log.read_text()}"
    return found


def _case_ids() -> list[str]:
    ids = [f"image-{c.id}" for c in IMAGE_CASES] + [f"folder-{c.id}" for c in FOLDER_CASES]
    ids += [f"gallery-{c.id}" for c in GALLERY_CASES] + [f"names-{c.id}" for c in NAMES_CASES]
    ids += [f"model-{c.id}" for c in MODEL_CASES] + [f"pickle-{c.id}" for c in PICKLE_CASES]
    return ids


@pytest.mark.parametrize("case_id", _case_ids())
def test_bad_input_is_handled_cleanly(results, case_id):
    runs = results.runs[case_id]
    for result in runs:
        assert "Traceback" not in result.stderr + result.stdout, result.describe()
        assert result.peak_mb < PEAK_MB, f"{result.peak_mb:.0f} MB: {result.describe()}"
        assert result.returncode >= 0, f"killed by signal {-result.returncode}: {result.describe()}"
    group, name = case_id.split("-", 1)
    CHECKS[group](results, name)


def _check_image(results: Results, case_id: str) -> None:
    case = next(c for c in IMAGE_CASES if c.id == case_id)
    path = results.corpus.images[case_id]
    runs = results.image_runs
    identify, mixed, bad_only = runs["identify"], runs["mixed"], runs["bad_only"]
    # Every command went on with the other inputs, and said how many it could not read.
    usable = sum(c.usable for c in IMAGE_CASES)
    assert identify.returncode == BAD_INPUT, identify.describe()
    assert len(identify.stdout.splitlines()) >= usable + 2  # result lines, good images included
    assert identify.lines_naming(results.corpus.good[1], "stdout"), identify.describe()
    assert mixed.returncode == BAD_INPUT and f"MIX: enrolled {usable + 1} " in mixed.stdout
    if case.usable:
        for result in (identify, mixed):
            assert result.lines_naming(path) == [], result.describe()
        assert len(identify.lines_naming(path, "stdout")) == 1, identify.describe()
    else:
        for result in (identify, mixed, bad_only):
            lines = result.lines_naming(path)
            assert len(lines) == 1 and case.reason in lines[0], (lines, result.describe())
        assert identify.lines_naming(path, "stdout") == []
        assert bad_only.returncode == BAD_INPUT and "nothing enrolled" in bad_only.stderr
        assert results.bad_only_unchanged, "a refused enrolment changed the gallery"
    if case.in_folder:
        _check_build_entry(
            results,
            results.corpus.class_folders / "G" / case.name,
            None if case.usable else case.build_reason or case.reason,
        )


def _check_build_entry(results: Results, path: Path, reason: str | None) -> None:
    build = results.build
    assert build.returncode == 0, build.describe()
    lines = build.lines_naming(path)
    if reason is None:
        assert lines == [], build.describe()
    else:
        assert len(lines) == 1 and reason in lines[0], (lines, build.describe())
    with Gallery.open(results.build_db) as gallery:
        items = {item.code: item.representatives for item in gallery.items()}
    usable = sum(c.usable and c.in_folder for c in IMAGE_CASES)
    assert items == {"G": usable + 1}, items


def _check_folder(results: Results, case_id: str) -> None:
    case = next(c for c in FOLDER_CASES if c.id == case_id)
    _check_build_entry(results, results.corpus.folder_entries[case_id], case.reason)


def _check_gallery(results: Results, case_id: str) -> None:
    case = next(c for c in GALLERY_CASES if c.id == case_id)
    path = results.corpus.galleries[case_id]
    for result in results.runs[f"gallery-{case_id}"]:
        command = result.command
        before, after = results.gallery_digests[(case_id, command)]
        assert result.returncode == case.expect[command], (command, result.describe())
        if result.returncode:
            errors = [line for line in result.stderr.splitlines() if ": error: " in line]
            reason = "already exists" if command == "build" else case.reason
            assert len(errors) == 1 and shown(path) in errors[0], (command, result.describe())
            assert reason in errors[0], (command, errors[0])
        if result.returncode or command in ("identify", "list", "export"):
            assert before == after, f"{command} changed {path}"


def _check_names(results: Results, case_id: str) -> None:
    case = next(c for c in NAMES_CASES if c.id == case_id)
    (result,) = results.runs[f"names-{case_id}"]
    assert result.returncode == case.exit_code, result.describe()
    if case.exit_code:
        errors = [line for line in result.stderr.splitlines() if ": error: " in line]
        names_file = shown(results.corpus.names[case_id])
        assert len(errors) == 1 and names_file in errors[0] and case.reason in errors[0], errors
        assert not result.db.exists(), "a refused build left a gallery"
    else:
        with Gallery.open(result.db) as gallery:
            assert [(i.code, i.name) for i in gallery.items()] == [("G", "Green tea")]


def _check_model(results: Results, case_id: str) -> None:
    case = next(c for c in MODEL_CASES if c.id == case_id)
    runs = results.runs[f"model-{case_id}"]
    for result in runs:
        errors = [line for line in result.stderr.splitlines() if ": error: " in line]
        assert result.returncode == 4, result.describe()
        assert len(errors) == 1 and shown(results.corpus.models[case_id]) in errors[0], errors
        assert case.reason in errors[0], errors[0]
    assert runs[0].unchanged and not (results.tmp / f"model-{case_id}-new.db").exists()


def _check_pickle(results: Results, case_id: str) -> None:
    case = next(c for c in PICKLE_CASES if c.id == case_id)
    (result,) = results.runs[f"pickle-{case_id}"]
    assert result.returncode == 0, result.describe()
    answer = json.loads(result.stdout)
    if case.usable:
        assert answer == {"tensors": 1}
    else:
        error = answer["error"]
        assert str(results.corpus.pickles[case_id]) in error and case.reason in error, error


CHECKS = {
    "image": _check_image,
    "folder": _check_folder,
    "gallery": _check_gallery,
    "names": _check_names,
    "model": _check_model,
    "pickle": _check_pickle,
}
