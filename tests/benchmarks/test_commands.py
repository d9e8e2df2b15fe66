"""benchmarks/commands.run_batch: exit codes, one log per command, really two at a time."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from commands import run_batch

# Each waits (up to 20 s) for the other's file: both end with 0 only if they ran at once.
RENDEZVOUS = """
import pathlib, sys, time
here, other = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
here.touch()
deadline = time.monotonic() + 20
while not other.exists():
    if time.monotonic() > deadline:
        sys.exit(7)
    time.sleep(0.05)
print("met", other.name)
"""


def test_exit_codes_and_logs(tmp_path):
    codes = run_batch(
        {
            "ok": ["python", "-c", "print('hello from ok')"],
            "bad": ["python", "-c", "import sys; print('oops'); sys.exit(3)"],
        },
        tmp_path / "logs",
        jobs=1,
    )
    assert codes == {"ok": 0, "bad": 3}
    assert (tmp_path / "logs" / "ok.log").read_text() == "hello from ok\n"
    assert (tmp_path / "logs" / "bad.log").read_text() == "oops\n"


def test_two_jobs_run_at_once(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    codes = run_batch(
        {
            "a": ["python", "-c", RENDEZVOUS, a, b],
            "b": ["python", "-c", RENDEZVOUS, b, a],
        },
        tmp_path / "logs",
        jobs=2,
    )
    assert codes == {"a": 0, "b": 0}
    assert (tmp_path / "logs" / "a.log").read_text() == "met b\n"


def test_each_command_gets_its_own_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SHARED", "everyone")
    show = "import os; print(os.environ['SHARED'], os.environ.get('TF_CONFIG'))"
    codes = run_batch(
        {"w0": ["python", "-c", show], "w1": ["python", "-c", show]},
        tmp_path / "logs",
        env={"w0": {"TF_CONFIG": "zero"}},
    )
    assert codes == {"w0": 0, "w1": 0}
    assert (tmp_path / "logs" / "w0.log").read_text() == "everyone zero\n"
    assert (tmp_path / "logs" / "w1.log").read_text() == "everyone None\n"


def test_write_results_writes_the_rows_and_the_table(tmp_path, monkeypatch, capsys):
    import json

    import commands

    monkeypatch.setattr(commands, "RESULTS", tmp_path / "results")
    commands.write_results("demo", [{"size": 96, "ms": 1.5}], "| size | ms |\n")
    assert json.loads((tmp_path / "results" / "demo.json").read_text()) == [{"size": 96, "ms": 1.5}]
    assert (tmp_path / "results" / "demo.md").read_text() == "| size | ms |\n"
    assert "| size | ms |" in capsys.readouterr().out
