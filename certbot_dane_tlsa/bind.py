"""Talking to BIND: validating a zone file, reloading it, and freezing dynamic zones.

`rndc reload` only *queues* a load and answers before named has read the file, so a reload
that named later rejects looks like success. We therefore ask `rndc zonestatus` afterwards
whether the serial we wrote is the one named loaded, and treat anything else as a failed
reload (the caller then restores the previous file).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

from certbot_dane_tlsa.errors import CommandError
from certbot_dane_tlsa.lite_dataclasses import dataclass
from certbot_dane_tlsa.runner import Result, run

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ZoneStatus:
    """The fields of `rndc zonestatus` that decide how we publish."""

    serial: int | None
    dynamic: bool
    inline_signing: bool
    secure: bool
    zone_type: str

    @classmethod
    def parse(cls, text: str) -> ZoneStatus:
        fields: dict[str, str] = {}
        for line in text.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields[key.strip().lower()] = value.strip()
        serial_text = fields.get("serial", "")
        return cls(
            serial=int(serial_text) if serial_text.isdigit() else None,
            dynamic=fields.get("dynamic", "no").lower() == "yes",
            inline_signing=fields.get("inline signing", "no").lower() == "yes",
            secure=fields.get("secure", "no").lower() == "yes",
            zone_type=fields.get("type", ""),
        )


class Rndc:
    """rndc with the user's command prefix (e.g. ``["rndc", "-c", "/etc/bind/rndc.conf"]``)."""

    def __init__(self, prefix: Sequence[str], zone: str, view: str | None = None) -> None:
        self.prefix = list(prefix)
        # rndc takes "ZONE [CLASS [VIEW]]"; a view needs the class spelled out.
        self.zone_args = [zone, "IN", view] if view else [zone]

    def argv(self, verb: str) -> list[str]:
        return [*self.prefix, verb, *self.zone_args]

    def _run(self, verb: str, check: bool = True) -> Result:
        return run(self.argv(verb), what=f"rndc {verb} {' '.join(self.zone_args)}", check=check)

    def zonestatus(self) -> ZoneStatus:
        return ZoneStatus.parse(self._run("zonestatus").output)

    def freeze(self) -> None:
        self._run("freeze")

    def thaw(self) -> str:
        return self._run("thaw").last_line

    def reload(self) -> str:
        return self._run("reload").last_line

    def wait_for_serial(self, serial: int, timeout: float = 15.0) -> None:
        """Wait until named reports ``serial`` as loaded; CommandError when it never does."""
        deadline = time.monotonic() + timeout
        seen: int | None = None
        while True:
            status = self.zonestatus()
            seen = status.serial
            if seen == serial:
                return
            if seen is None and not status.zone_type:
                # Not BIND's zonestatus (an rndc wrapper, or a stand-in such as `true`):
                # nothing to wait for, and the DNS verification still checks the result.
                log.warning("rndc zonestatus said nothing about the zone; not waiting for the load")
                return
            if time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        raise CommandError(
            f"named did not load serial {serial} of zone {self.zone_args[0]} "
            f"(it still has {seen}); see named's log for the reason"
        )


def checkzone(
    command: Sequence[str], zone: str, path: Path, *, shown_as: Path | None = None
) -> None:
    """Validate a master file with named-checkzone before it replaces the live one.

    The candidate is a temp file; errors are reported against the real zone file's name,
    which is what the user knows.
    """
    argv = [*command, zone, str(path)]
    result = run(argv, what=f"named-checkzone {zone}", check=False)
    if result.returncode == 0:
        return
    shown = str(shown_as or path)
    problems = [
        line.strip().replace(str(path), shown)
        for line in result.output.splitlines()
        if line.strip() and "not loaded due to errors" not in line
    ]
    reason = problems[0] if problems else f"exit status {result.returncode}"
    raise CommandError(f"named-checkzone rejected the edited zone {zone}: {reason}")
