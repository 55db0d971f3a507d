"""The README's first command: `certbot-dane-tlsa demo` runs the whole job and cleans up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.services, pytest.mark.slow]


def lab_processes(root: Path) -> list[str]:
    """Command lines of live processes that mention the demo's directory."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(root) in cmdline:
            found.append(cmdline)
    return found


def test_demo_runs_every_step_verified_and_leaves_nothing_behind() -> None:
    # The default work directory: pytest's tmp paths are too long for Postfix's unix sockets.
    result = subprocess.run(
        [sys.executable, "-m", "certbot_dane_tlsa", "demo"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "[8/8]" in out and "The demo is complete" in out
    # posttls-finger verified the server after issuance and after the renewal (at least).
    assert out.count("posttls-finger: Verified TLS connection established") >= 2
    assert "zone file unchanged: same key, same record" in out
    assert "exit 0:" in out
    lab_root = next(line for line in out.splitlines() if "everything lives in" in line)
    root = Path(lab_root.split("everything lives in ", 1)[1].split(" and on", 1)[0])
    assert not root.exists(), "the demo's directory was not removed"
    assert lab_processes(root) == []


def test_demo_interrupted_with_ctrl_c_stops_everything() -> None:
    import signal
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "certbot_dane_tlsa", "demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    lines = []
    root = None
    deadline = time.monotonic() + 120
    for line in proc.stdout:  # wait until BIND, unbound and Pebble are up
        lines.append(line)
        if "everything lives in" in line:
            root = Path(line.split("everything lives in ", 1)[1].split(" and on", 1)[0])
        if line.startswith("[3/8]") or time.monotonic() > deadline:
            break
    assert root is not None and root.exists(), "".join(lines)
    assert lab_processes(root), "the lab should be running at this point"
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, "".join(lines) + rest
    assert "interrupted: cleaning up" in rest
    assert not root.exists()
    assert lab_processes(root) == []
