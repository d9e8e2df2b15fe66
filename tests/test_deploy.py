"""The systemd unit keys its restart policy on the shared exit-code table, and the install
script is valid shell. (``make check-units`` runs systemd-analyze verify on the unit;
``make check-install-chroot`` runs the install script in a fresh Debian.)"""

from __future__ import annotations

import configparser
import re
import subprocess
from pathlib import Path

from itemrec.edge_runtime.errors import ExitCode

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def unit(name: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=True, delimiters=("=",))
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string((DEPLOY / name).read_text().replace("\\\n", " "))
    return parser


def test_restart_policy_follows_the_exit_code_table():
    service = unit("itemrec-edge.service")["Service"]
    needs_a_person = {ExitCode.USAGE, ExitCode.BAD_INPUT, ExitCode.BAD_MODEL}
    assert {int(code) for code in service["RestartPreventExitStatus"].split()} == needs_a_person
    # on-failure: every non-zero status restarts (1 crash, 5-7 camera and busy) but those
    # prevented; 0 (stopped on purpose) does not.
    assert service["Restart"] == "on-failure"
    # The journal line saying why there is no restart names exactly the same codes.
    said = re.search(r"case \"\$EXIT_STATUS\" in ([0-9|]+)\)", service["ExecStopPost"]).group(1)
    assert {int(code) for code in said.split("|")} == needs_a_person
    # Restarts never stop: no start-rate limit (a camera unplugged for an hour comes back).
    assert unit("itemrec-edge.service")["Unit"]["StartLimitIntervalSec"] == "0"
    assert service["User"] == "itemrec" and "video" in service["SupplementaryGroups"].split()
    assert service["StateDirectory"] == "itemrec"
    assert (
        "--headless" in service["ExecStart"]
        and "/var/lib/itemrec/gallery.db" in service["ExecStart"]
    )


def test_install_script_is_valid_shell_and_refuses_bad_options(tmp_path):
    script = str(DEPLOY / "install.sh")
    assert subprocess.run(["sh", "-n", script]).returncode == 0
    proc = subprocess.run(
        ["sh", script, "--extra", "edge-nope", "--source", "x"], capture_output=True, text=True
    )
    assert proc.returncode == 2 and "--extra: edge, edge-gui" in proc.stderr
    proc = subprocess.run(
        ["sh", script, "--wheel", str(tmp_path / "none.whl")], capture_output=True, text=True
    )
    assert proc.returncode == 2 and "--wheel: no file" in proc.stderr
