"""Running external programs (rndc, named-checkzone, docker, postfix).

Every command is an argv list handed straight to the kernel: no shell ever sees a setting, a
host name or a path. The program's own words are what the user needs when it fails, so the
error carries the last line of its output rather than our paraphrase.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Mapping, Sequence

from certbot_dane_tlsa.errors import CommandError
from certbot_dane_tlsa.lite_dataclasses import dataclass

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 60.0


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    returncode: int
    output: str

    @property
    def last_line(self) -> str:
        lines = [line.strip() for line in self.output.splitlines() if line.strip()]
        return lines[-1] if lines else ""


def describe(argv: Sequence[str]) -> str:
    """A readable rendering of an argv list for logs and dry runs (quoted like a shell would)."""
    import shlex

    return " ".join(shlex.quote(a) for a in argv)


def run(
    argv: Sequence[str],
    *,
    what: str,
    check: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    env: Mapping[str, str] | None = None,
) -> Result:
    """Run ``argv``; on failure raise :class:`CommandError` that says ``what`` failed and why.

    ``what`` is the user's view of the step ("rndc reload example.com"), so the one-line error
    reads as a sentence even when the program's own message is terse.
    """
    argv = [str(a) for a in argv]
    if not argv or not argv[0]:
        raise CommandError(f"{what}: empty command")
    log.debug("running: %s", describe(argv))
    try:
        proc = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            timeout=timeout,
            env=dict(env) if env is not None else None,
            check=False,
        )
    except FileNotFoundError:
        raise CommandError(f"{what}: command not found: {argv[0]}") from None
    except PermissionError:
        raise CommandError(f"{what}: not allowed to run {argv[0]}") from None
    except subprocess.TimeoutExpired:
        raise CommandError(f"{what}: {argv[0]} did not finish within {timeout:g} s") from None
    result = Result(tuple(argv), proc.returncode, proc.stdout or "")
    for line in result.output.splitlines():
        if line.strip():
            log.debug("  %s: %s", argv[0], line.rstrip())
    if check and proc.returncode != 0:
        reason = result.last_line or f"exit status {proc.returncode}"
        raise CommandError(f"{what} failed: {reason}")
    return result
