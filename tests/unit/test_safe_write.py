"""Safe replacement of a zone file: owner, group and mode kept, atomic install with a backup,
restore with a fresh mtime, a real flock between processes, and cleanup of stale temp files."""

from __future__ import annotations

import multiprocessing
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from certbot_dane_tlsa import dnsname
from certbot_dane_tlsa.errors import ZoneError
from certbot_dane_tlsa.records import TlsaParams, TlsaRecord
from certbot_dane_tlsa.zonefile import (
    ZoneLock,
    clean_stale_temp_files,
    discard_candidate,
    install_candidate,
    plan_zone_edit,
    write_candidate,
)

ORIGIN = dnsname.from_text("example.com.")
OWNER = dnsname.from_text("_25._tcp.mail.example.com.")
NEW = TlsaRecord(3, 1, 1, bytes(range(32)))
TEXT = """$TTL 300
@ IN SOA ns1.example.com. hostmaster.example.com. 7 7200 3600 1209600 300
@ IN NS ns1
ns1 IN A 192.0.2.1
mail IN A 192.0.2.25
"""


def make_edit(path: Path):  # type: ignore[no-untyped-def]
    return plan_zone_edit(
        path,
        ORIGIN,
        {OWNER: {NEW}},
        {OWNER: {TlsaParams(3, 1, 1)}},
        now=datetime(2024, 5, 1, tzinfo=UTC),
    )


@pytest.fixture
def zone(tmp_path: Path) -> Path:
    path = tmp_path / "db.example.com"
    path.write_text(TEXT)
    old = time.time() - 3600
    os.utime(path, (old, old))
    return path


def test_candidate_keeps_owner_group_mode(zone: Path) -> None:
    assert os.geteuid() == 0, "the project's CI runs these tests as root"
    os.chown(zone, 1234, 2345)
    os.chmod(zone, 0o640)
    candidate = write_candidate(make_edit(zone))
    st = candidate.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (1234, 2345, 0o640)
    assert candidate.parent == zone.parent
    assert candidate.name.startswith(".db.example.com.dane-tlsa.")
    assert candidate.name.endswith(".tmp")
    assert b"\t8 7200" not in candidate.read_bytes() and b" 8 7200" in candidate.read_bytes()
    assert zone.read_text() == TEXT  # the original is untouched until install


def test_install_and_restore(zone: Path) -> None:
    old_stat = zone.stat()
    candidate = write_candidate(make_edit(zone))
    new_bytes = candidate.read_bytes()
    backup = install_candidate(candidate, zone)
    assert not candidate.exists()
    assert zone.read_bytes() == new_bytes
    assert zone.stat().st_mtime_ns > old_stat.st_mtime_ns
    assert backup.saved == zone.parent / ".db.example.com.dane-tlsa.bak"
    assert backup.saved.read_text() == TEXT
    assert backup.saved.stat().st_ino == old_stat.st_ino  # a hard link, not a copy

    installed_mtime = zone.stat().st_mtime_ns
    backup.restore()
    assert zone.read_text() == TEXT
    assert zone.stat().st_mtime_ns > installed_mtime  # fresh, or rndc would skip the reload
    assert sorted(p.name for p in zone.parent.iterdir() if p.name.endswith(".tmp")) == []


def temp_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_install_after_a_restore_leaves_no_temp_file(zone: Path) -> None:
    # After a restore the backup and the zone are one inode, so renaming the staging link
    # onto the backup is a no-op for rename(2); the staging link must still go away.
    install_candidate(write_candidate(make_edit(zone)), zone).restore()
    backup_path = zone.parent / ".db.example.com.dane-tlsa.bak"
    assert backup_path.stat().st_ino == zone.stat().st_ino  # the state that matters here
    candidate = write_candidate(make_edit(zone))
    new_bytes = candidate.read_bytes()
    backup = install_candidate(candidate, zone)
    assert temp_files(zone.parent) == []
    assert zone.read_bytes() == new_bytes
    assert backup.saved.read_text() == TEXT
    backup.restore()  # the backup still works
    assert zone.read_text() == TEXT
    assert temp_files(zone.parent) == []


def test_restore_onto_the_same_inode_leaves_no_temp_file(zone: Path) -> None:
    # A second restore finds the zone already linked to the backup: the rename of the temp
    # link is a no-op, yet the zone must get a fresh mtime and no temp file may remain.
    backup = install_candidate(write_candidate(make_edit(zone)), zone)
    backup.restore()
    assert backup.saved.stat().st_ino == zone.stat().st_ino
    restored_mtime = zone.stat().st_mtime_ns
    backup.restore()
    assert zone.read_text() == TEXT
    assert zone.stat().st_mtime_ns > restored_mtime  # fresh, or rndc would skip the reload
    assert temp_files(zone.parent) == []
    assert sorted(p.name for p in zone.parent.iterdir()) == [
        ".db.example.com.dane-tlsa.bak",
        "db.example.com",
    ]


def test_second_install_replaces_the_older_backup(zone: Path) -> None:
    install_candidate(write_candidate(make_edit(zone)), zone)
    middle = zone.read_bytes()
    backup = install_candidate(write_candidate(make_edit(zone)), zone)
    assert backup.saved.read_bytes() == middle


def test_discard_and_stale_cleanup(zone: Path) -> None:
    candidate = write_candidate(make_edit(zone))
    discard_candidate(candidate)
    discard_candidate(candidate)  # twice is fine
    assert not candidate.exists()
    stale = zone.parent / ".db.example.com.dane-tlsa.0123abcd.tmp"
    stale.write_text("half a zone")
    other = zone.parent / ".db.other.dane-tlsa.0123abcd.tmp"
    other.write_text("another zone's")
    assert clean_stale_temp_files(zone) == [stale]
    assert not stale.exists() and other.exists()


def _hold_lock(path: str, hold: float, started: multiprocessing.Event) -> None:  # type: ignore[valid-type]
    with ZoneLock(Path(path)):
        started.set()  # type: ignore[attr-defined]
        time.sleep(hold)


def test_lock_serialises_processes(zone: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    started = ctx.Event()
    proc = ctx.Process(target=_hold_lock, args=(str(zone), 1.0, started))
    proc.start()
    try:
        assert started.wait(30)
        t = time.monotonic()
        with ZoneLock(zone, timeout=20):
            waited = time.monotonic() - t
        assert waited > 0.5  # had to wait for the other process to let go
    finally:
        proc.join(30)
    assert proc.exitcode == 0
    lock_file = zone.parent / ".db.example.com.dane-tlsa.lock"
    assert lock_file.exists()  # never deleted


def test_lock_times_out(zone: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    started = ctx.Event()
    proc = ctx.Process(target=_hold_lock, args=(str(zone), 3.0, started))
    proc.start()
    try:
        assert started.wait(30)
        t = time.monotonic()
        with pytest.raises(ZoneError, match="holds the zone lock"), ZoneLock(zone, timeout=0.3):
            pass
        assert time.monotonic() - t < 2.5
    finally:
        proc.join(30)
    with ZoneLock(zone, timeout=1):  # free again once the holder exited
        pass
