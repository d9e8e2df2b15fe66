"""Prove that each device extra of the wheel installs from binary wheels on a 64-bit Pi.

For linux aarch64 CPython 3.11 (Raspberry Pi OS Bookworm) and 3.13 (Trixie), runs

    pip install --dry-run --ignore-installed --only-binary=:all: --python-version X.Y \\
        --platform manylinux_2_36_aarch64 ... --platform manylinux_2_17_aarch64 \\
        --platform manylinux2014_aarch64 'dist/itemrec-<version>-py3-none-any.whl[EXTRA]'

(pip does not widen a manylinux tag: every glibc from Bookworm's 2.36 down is listed) and
checks what it would install: no TensorFlow, exactly the intended OpenCV (none for
edge-system, whose OpenCV is Pi OS's own), and a numpy the extra's OpenCV was built for.
``edge-system`` goes into a ``--system-site-packages`` venv over Pi OS's numpy (Bookworm
1.24.2, Trixie 2.2.4): every package it resolves to must accept that numpy, or pip would
install another numpy over it and break apt's OpenCV and Picamera2.
pip evaluates environment markers (``python_version < "3.13"``) for the Python it runs
in, whatever ``--python-version`` says, so each case runs under a CPython of its own version
when one is found (on PATH or in pyenv), else under this one, and the table says which.
Needs the package index (network). Writes the table to stdout; exit 1 if any check fails.

    python scripts/check_device_resolution.py dist/itemrec-0.1.0-py3-none-any.whl
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import click
from packaging.requirements import Requirement

BOOKWORM_GLIBC_MINOR = 36
PLATFORMS = [f"manylinux_2_{m}_aarch64" for m in range(BOOKWORM_GLIBC_MINOR, 16, -1)] + [
    "manylinux2014_aarch64"
]
OPENCV = {"opencv-python", "opencv-python-headless", "opencv-contrib-python"}
FORBIDDEN = {"tensorflow", "tensorflow-cpu", "tf-keras", "keras"}
# The numpy of Pi OS's apt python3-numpy: Bookworm (Python 3.11) and Trixie (3.13).
SYSTEM_NUMPY = {"3.11": "1.24.2", "3.13": "2.2.4"}


@dataclass(frozen=True)
class Case:
    extra: str
    python: str
    opencv: str | None  # the one OpenCV distribution expected, None for none
    numpy_major: int | None  # the numpy major version required, None: any
    system_numpy: str | None = None  # the numpy already there, which must be kept


CASES = [
    Case("edge", "3.11", "opencv-python-headless", 2),
    Case("edge", "3.13", "opencv-python-headless", 2),
    Case("edge-gui", "3.11", "opencv-python", 2),
    Case("edge-gui", "3.13", "opencv-python", 2),
    Case("edge-system", "3.11", None, None, SYSTEM_NUMPY["3.11"]),
    Case("edge-system", "3.13", None, None, SYSTEM_NUMPY["3.13"]),
    # `itemrec-edge serve` on top (FastAPI, uvicorn: pure Python but pydantic-core).
    Case("edge,edge-serve", "3.11", "opencv-python-headless", 2),
    Case("edge,edge-serve", "3.13", "opencv-python-headless", 2),
    # tflite-runtime 2.14 has wheels up to CPython 3.11 only: no 3.13 case.
    Case("edge-legacy", "3.11", "opencv-python-headless", 1),
]


def interpreter(version: str) -> str | None:
    """A CPython ``version`` with pip, on PATH or in pyenv; None if there is none."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = [sys.executable, shutil.which(f"python{version}")]
    candidates += sorted(str(p) for p in pyenv.glob(f"{version}*/bin/python{version}"))
    probe = "import sys, pip; print('%d.%d' % sys.version_info[:2])"
    for candidate in filter(None, candidates):
        proc = subprocess.run([candidate, "-c", probe], capture_output=True, text=True)
        if proc.returncode == 0 and proc.stdout.strip() == version:
            return candidate
    return None


def resolve(wheel: Path, case: Case, python: str) -> dict[str, dict]:
    """name -> the metadata of what pip would install; raises RuntimeError if it cannot."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        command = [
            *(python, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed"),
            *("--only-binary=:all:", "--python-version", case.python, "--report", str(report)),
            *("--target", str(Path(tmp) / "target")),  # pip < 23.3 wants it with --platform
            *(f"--platform={platform}" for platform in PLATFORMS),
            f"{wheel.resolve()}[{case.extra}]",
        ]
        proc = subprocess.run(command, capture_output=True, text=True)
        if proc.returncode != 0:
            errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR")]
            raise RuntimeError(" / ".join(errors) or proc.stderr.strip()[-300:])
        installs = json.loads(report.read_text())["install"]
    return {i["metadata"]["name"].lower().replace("_", "-"): i["metadata"] for i in installs}


def numpy_requirements(packages: dict[str, dict], python: str) -> list[tuple[str, Requirement]]:
    """(package, requirement) of every numpy requirement that applies on ``python``."""
    environment = {"python_version": python, "extra": ""}
    found = []
    for name, metadata in packages.items():
        for text in metadata.get("requires_dist") or []:
            requirement = Requirement(text)
            applies = requirement.marker is None or requirement.marker.evaluate(environment)
            if requirement.name == "numpy" and applies:
                found.append((name, requirement))
    return found


def problems(case: Case, metadata: dict[str, dict]) -> list[str]:
    packages = {name: m["version"] for name, m in metadata.items()}
    found = []
    if FORBIDDEN & packages.keys():
        found.append(f"pulls {sorted(FORBIDDEN & packages.keys())}")
    opencv = sorted(OPENCV & packages.keys())
    if opencv != ([case.opencv] if case.opencv else []):
        found.append(f"OpenCV {opencv or 'none'}, expected {case.opencv or 'none'}")
    numpy = packages.get("numpy", "")
    if case.numpy_major is not None and not numpy.startswith(f"{case.numpy_major}."):
        found.append(f"numpy {numpy or 'none'}, expected {case.numpy_major}.x")
    if not {"ai-edge-litert", "tflite-runtime"} & packages.keys():
        found.append("no interpreter")
    if case.system_numpy:
        for name, requirement in numpy_requirements(metadata, case.python):
            if not requirement.specifier.contains(case.system_numpy):
                found.append(f"{name} requires {requirement}, not the system's {case.system_numpy}")
    return found


def check(wheel: Path, case: Case) -> tuple[Case, str, list[str]]:
    python = interpreter(case.python)
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    note = "" if python else f" [markers of Python {running}: no Python {case.python} here]"
    try:
        metadata = resolve(wheel, case, python or sys.executable)
    except RuntimeError as error:
        return case, note, [f"does not resolve: {error}"]
    shown = ("ai-edge-litert", "tflite-runtime", *sorted(OPENCV), "numpy", "ml-dtypes")
    shown += ("fastapi", "pydantic-core", "uvicorn")
    if case.system_numpy:  # pip keeps the system's numpy: show that one
        shown = tuple(n for n in shown if n != "numpy")
        note = f", system numpy {case.system_numpy}" + note
    versions = ", ".join(f"{n} {metadata[n]['version']}" for n in shown if n in metadata)
    return case, versions + note, problems(case, metadata)


@click.command()
@click.argument("wheel", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--jobs", default=4, show_default=True, type=click.IntRange(min=1))
def main(wheel: Path, jobs: int):
    """Resolve WHEEL's device extras for linux aarch64 CPython 3.11 and 3.13."""
    with ThreadPoolExecutor(jobs) as pool:
        results = list(pool.map(lambda case: check(wheel, case), CASES))
    failed = 0
    click.echo("| extra | python | resolves to | check |\n|---|---|---|---|")
    for case, versions, found in results:
        failed += bool(found)
        status = "; ".join(found) if found else "ok"
        click.echo(f"| {case.extra} | cp{case.python.replace('.', '')} | {versions} | {status} |")
    click.echo(f"device extras: {len(results) - failed} of {len(results)} resolve for aarch64")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
