"""Publishing TLSA records through a BIND zone file: edit, validate, swap, reload, roll back.

The order is what makes it safe. Under an exclusive lock we plan the edit from the file as it
is now, write a candidate beside it, have named-checkzone accept the candidate, and only then
swap it in (keeping a hard link to the previous version). A reload that named refuses puts the
previous file back. Dynamic zones are frozen first, because named owns their file while they
take updates, and thawed again whatever happens.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime
from typing import TextIO

from certbot_dane_tlsa.bind import Rndc, checkzone
from certbot_dane_tlsa.errors import CommandError, DaneError, ZoneError
from certbot_dane_tlsa.lite_dataclasses import dataclass
from certbot_dane_tlsa.policy import DesiredState
from certbot_dane_tlsa.runner import describe
from certbot_dane_tlsa.settings import ZoneSettings
from certbot_dane_tlsa.zonefile import (
    Backup,
    ZoneEdit,
    ZoneLock,
    clean_stale_temp_files,
    discard_candidate,
    install_candidate,
    plan_zone_edit,
    write_candidate,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    zone: ZoneSettings
    changed: bool
    reloaded: bool
    old_serial: int | None
    new_serial: int | None
    edit: ZoneEdit | None


def _is_dynamic(zone: ZoneSettings, rndc: Rndc, dry_run: bool) -> bool:
    """Whether named takes updates for this zone (then its file may only change frozen)."""
    if zone.dynamic != "auto":
        return zone.dynamic == "yes"
    assert zone.zone_file is not None
    journal = zone.zone_file.with_name(zone.zone_file.name + ".jnl")
    try:
        status = rndc.zonestatus()
    except CommandError:
        if dry_run:
            dynamic = journal.exists()
            log.warning(
                "could not ask rndc whether %s is dynamic; going by its journal file: %s",
                zone.name,
                "dynamic" if dynamic else "static",
            )
            return dynamic
        raise
    return status.dynamic


def _plan(zone: ZoneSettings, state: DesiredState, now: datetime) -> ZoneEdit:
    assert zone.zone_file is not None
    targets = state.targets_in(zone)
    return plan_zone_edit(
        zone.zone_file,
        zone.origin,
        {t.owner: state.desired[t.owner] for t in targets},
        {t.owner: state.managed[t.owner] for t in targets},
        serial=zone.serial,
        ttl=zone.ttl,
        now=now,
        anchors={t.owner: t.host for t in targets},
    )


def _plan_after_freeze(
    zone: ZoneSettings, state: DesiredState, now: datetime, rndc: Rndc, timeout: float = 10.0
) -> ZoneEdit:
    """Plan only once named has written the journal into the file.

    `rndc freeze` answers before named has finished dumping the zone, so the file can still
    hold older contents for a moment; an edit planned from those would undo recent updates.
    The file is complete when its serial is the one named reports.
    """
    wanted = rndc.zonestatus().serial
    deadline = time.monotonic() + timeout
    while True:
        edit = _plan(zone, state, now)
        if wanted is None or edit.old_serial == wanted:
            return edit
        if time.monotonic() >= deadline:
            raise DaneError(
                f"zone {zone.name}: after rndc freeze, {zone.zone_file} still has serial "
                f"{edit.old_serial} while named has {wanted}"
            )
        time.sleep(0.1)


def publish_zone_file(
    zone: ZoneSettings,
    state: DesiredState,
    *,
    dry_run: bool = False,
    out: TextIO | None = None,
    now: datetime | None = None,
    reload_when_unchanged: Callable[[], bool] | None = None,
) -> Outcome:
    """Bring ``zone``'s file in line with ``state`` and make named load it.

    ``reload_when_unchanged`` is asked when the file is already right; if it says True (the
    servers may not serve what the file holds, e.g. an earlier reload was lost), we reload.
    """
    assert zone.zone_file is not None
    now = now or datetime.now(UTC)
    rndc = Rndc(zone.rndc, zone.name, zone.view)
    path = zone.zone_file
    if not path.is_file():
        raise DaneError(f"zone file {path} does not exist")

    if dry_run:
        edit = _plan(zone, state, now)
        dynamic = _is_dynamic(zone, rndc, dry_run=True)
        if out is not None:
            _print_dry_run(out, zone, rndc, edit, dynamic)
        return Outcome(zone, edit.changed, False, edit.old_serial, edit.new_serial, edit)

    with ZoneLock(path):
        for stale in clean_stale_temp_files(path):
            log.info("removed %s left behind by an interrupted run", stale)
        dynamic = _is_dynamic(zone, rndc, dry_run=False)
        if dynamic:
            log.info("zone %s is dynamic: rndc freeze", zone.name)
            rndc.freeze()
        try:
            edit = (
                _plan_after_freeze(zone, state, now, rndc) if dynamic else _plan(zone, state, now)
            )
            if not edit.changed:
                log.info("zone %s: TLSA records in %s are already right", zone.name, path)
                if dynamic:
                    log.info("zone %s: rndc thaw (nothing to change)", zone.name)
                    rndc.thaw()
                    return Outcome(zone, False, False, edit.old_serial, None, edit)
                reloaded = False
                if reload_when_unchanged is not None and reload_when_unchanged():
                    log.info(
                        "zone %s: the servers may not have loaded the file: rndc reload",
                        zone.name,
                    )
                    rndc.reload()
                    reloaded = True
                return Outcome(zone, False, reloaded, edit.old_serial, None, edit)
            backup = _install(zone, edit)
        except BaseException:
            if dynamic:
                # Never leave a dynamic zone frozen: it would refuse every update after us.
                with suppress(DaneError):
                    rndc.thaw()
            raise
        # Reload while still holding the lock: a rollback must never clobber the edit of a
        # concurrent run that came after ours.
        _load(zone, rndc, edit, backup, dynamic)
    return Outcome(zone, True, True, edit.old_serial, edit.new_serial, edit)


def _install(zone: ZoneSettings, edit: ZoneEdit) -> Backup:
    assert zone.zone_file is not None
    try:
        candidate = write_candidate(edit)
    except OSError as exc:
        raise ZoneError(f"cannot write beside {zone.zone_file}: {exc.strerror or exc}") from None
    try:
        checkzone(zone.checkzone, zone.name, candidate, shown_as=zone.zone_file)
    except BaseException:
        discard_candidate(candidate)
        raise
    try:
        backup = install_candidate(candidate, zone.zone_file)
    except OSError as exc:
        discard_candidate(candidate)
        raise ZoneError(f"cannot replace {zone.zone_file}: {exc.strerror or exc}") from None
    for change in edit.changes:
        after = ", ".join(sorted(r.to_text()[:18] + "..." for r in change.after)) or "nothing"
        log.info("zone %s: %s TLSA -> %s", zone.name, change.owner, after)
    log.info(
        "zone %s: wrote %s (serial %s -> %s)",
        zone.name,
        zone.zone_file,
        edit.old_serial,
        edit.new_serial if edit.new_serial is not None else "unchanged",
    )
    return backup


def _load(zone: ZoneSettings, rndc: Rndc, edit: ZoneEdit, backup: Backup, dynamic: bool) -> None:
    """Make named load the new file; put the old one back when named will not have it."""
    verb = "thaw" if dynamic else "reload"
    try:
        answer = rndc.thaw() if dynamic else rndc.reload()
        log.info("zone %s: rndc %s: %s", zone.name, verb, answer or "ok")
        if edit.new_serial is not None:
            rndc.wait_for_serial(edit.new_serial)
    except DaneError as exc:
        backup.restore()
        if dynamic:
            # named may be left frozen when thaw failed; thawing again loads the restored file.
            with suppress(DaneError):
                rndc.thaw()
        else:
            with suppress(DaneError):
                rndc.reload()
        raise DaneError(f"{exc}; the previous zone file was restored") from exc


def _print_dry_run(
    out: TextIO, zone: ZoneSettings, rndc: Rndc, edit: ZoneEdit, dynamic: bool
) -> None:
    if not edit.changed:
        out.write(f"# zone {zone.name}: {zone.zone_file} is already right; nothing to do\n")
        return
    out.write(edit.diff())
    commands = [[*zone.checkzone, zone.name, str(zone.zone_file)]]
    if dynamic:
        commands = [rndc.argv("freeze"), *commands, rndc.argv("thaw")]
    else:
        commands.append(rndc.argv("reload"))
    for argv in commands:
        out.write(f"# would run: {describe(argv)}\n")
