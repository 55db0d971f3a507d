"""What the deploy hook can learn about the certbot run that started it.

Certbot runs deploy hooks during ``--dry-run`` when ``--run-deploy-hooks`` is given, but it
passes no variable that says so. A hook that published for real would then change DNS during
what the user meant as a rehearsal. The only trace is certbot's own command line, so we look
up the process ancestry (Linux /proc) for a certbot process run with ``--dry-run``.
"""

from __future__ import annotations

import os
from pathlib import Path

MAX_DEPTH = 8


def _parent_and_cmdline(pid: int) -> tuple[int, list[str]] | None:
    proc = Path("/proc") / str(pid)
    try:
        status = (proc / "status").read_text(errors="replace")
        cmdline = (proc / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    ppid = 0
    for line in status.splitlines():
        if line.startswith("PPid:"):
            ppid = int(line.split()[1])
            break
    return ppid, [part.decode(errors="replace") for part in cmdline if part]


def _is_certbot(argv: list[str]) -> bool:
    return any(Path(part).name in ("certbot", "letsencrypt") for part in argv[:3]) or (
        len(argv) >= 3 and argv[1] == "-m" and argv[2] == "certbot"
    )


def started_by_certbot_dry_run(pid: int | None = None) -> bool:
    """True when an ancestor of this process is ``certbot ... --dry-run``."""
    current = os.getppid() if pid is None else pid
    for _ in range(MAX_DEPTH):
        if current <= 1:
            return False
        found = _parent_and_cmdline(current)
        if found is None:
            return False
        parent, argv = found
        if _is_certbot(argv):
            return "--dry-run" in argv
        current = parent
    return False
