"""The rollover state file: private, atomic, and loud about corruption."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from certbot_dane_tlsa.keystate import (
    CurrentKey,
    KeyInfo,
    KeyState,
    NextKey,
    RetiringKey,
    StateError,
    StateStore,
)

T0 = datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
DIGEST = "ab" * 32


def full_state() -> KeyState:
    key = KeyInfo(DIGEST, "ecdsa", None, "secp256r1", [f"3 1 1 {DIGEST}"])
    old = KeyInfo("cd" * 32, "rsa", 2048, None, [f"3 1 1 {'cd' * 32}"])
    state = KeyState("mx.example.test")
    state.current = CurrentKey(key, T0, served_since=T0 + timedelta(seconds=3))
    state.next = NextKey(key, T0, ttl=300, negative_ttl=60, owner_was_new=True)
    state.retiring.append(RetiringKey(old, T0, 300, live_since=T0 + timedelta(hours=1)))
    state.note(T0, "staged")
    return state


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "dane-tlsa" / "mx.example.test", "mx.example.test")
    state = full_state()
    store.save(state)
    loaded = store.load()
    assert loaded == state
    assert loaded is not None and loaded.next is not None
    assert loaded.next.staged_at == T0  # microseconds and time zone survive


def test_directory_is_0700_and_files_are_0600(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s" / "mx", "mx")
    store.save(full_state())
    key = store.write_key(b"-----BEGIN PRIVATE KEY-----\n...\n")
    assert mode(store.directory) == 0o700
    assert mode(store.state_path) == 0o600
    assert mode(key) == 0o600


def test_an_existing_directory_that_others_can_read_is_tightened(tmp_path: Path) -> None:
    directory = tmp_path / "mx"
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)
    StateStore(directory, "mx").save(full_state())
    assert mode(directory) == 0o700


def test_save_replaces_atomically_and_leaves_no_temp_files(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "mx", "mx")
    store.save(KeyState("mx"))
    inode = store.state_path.stat().st_ino
    store.save(full_state())
    assert store.state_path.stat().st_ino != inode  # a new file was renamed over the old one
    assert [p.name for p in store.directory.iterdir()] == ["state.json"]


def test_a_failed_write_keeps_the_old_state_and_no_temp_file(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "mx", "mx")
    store.ensure_directory()
    # A real fault: the state path is a directory, so the final rename fails.
    store.state_path.mkdir()
    with pytest.raises(StateError, match="cannot write"):
        store.save(full_state())
    assert [p.name for p in store.directory.iterdir()] == ["state.json"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b'{"format": 1, "lineage": "mx", "current": ', "not valid JSON"),
        (b"\xff\xfe garbage", "not UTF-8"),
        (b"[]", "not a rollover state file"),
        (b'{"format": 99, "lineage": "mx"}', "format 99"),
        (b'{"format": 1, "lineage": "mx", "next": {"key": {}}}', "missing field"),
        (
            json.dumps(
                {"format": 1, "lineage": "mx", "current": {
                    "key": {"spki_sha256": "zz", "key_type": "rsa", "records": []},
                    "first_seen": "2025-01-01T00:00:00+00:00"}}
            ).encode(),
            "SHA-256",
        ),
        (
            json.dumps(
                {"format": 1, "lineage": "mx", "current": {
                    "key": {"spki_sha256": DIGEST, "key_type": "rsa", "records": []},
                    "first_seen": "2025-01-01T00:00:00"}}
            ).encode(),
            "time zone",
        ),
    ],
)  # fmt: skip
def test_corrupt_file_is_a_clear_error(tmp_path: Path, content: bytes, reason: str) -> None:
    store = StateStore(tmp_path / "mx", "mx")
    store.ensure_directory()
    store.state_path.write_bytes(content)
    with pytest.raises(StateError) as info:
        store.load()
    message = str(info.value)
    assert reason in message
    assert str(store.state_path) in message
    assert "Move" in message and "\n" not in message


def test_state_of_another_lineage_is_refused(tmp_path: Path) -> None:
    StateStore(tmp_path / "mx", "other").save(KeyState("other"))
    with pytest.raises(StateError, match="belongs to lineage 'other'"):
        StateStore(tmp_path / "mx", "mx").load()


def test_restore_raw_puts_back_exact_bytes_or_removes(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "mx", "mx")
    assert store.raw() is None and store.load() is None
    store.save(full_state())
    before = store.raw()
    store.save(KeyState("mx"))
    store.restore_raw(before)
    assert store.raw() == before
    store.restore_raw(None)
    assert not store.state_path.exists()


def test_lock_excludes_a_second_holder(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "mx", "mx")
    other = StateStore(tmp_path / "mx", "mx")
    with (
        store.lock(),
        pytest.raises(StateError, match="holds the lock"),
        other.lock(timeout=0.3),
    ):
        pass
    with other.lock(timeout=0.3):  # released again
        pass


def test_events_are_bounded(tmp_path: Path) -> None:
    state = KeyState("mx")
    for index in range(100):
        state.note(T0, f"event {index}")
    assert len(state.events) == 40 and state.events[-1][1] == "event 99"


def test_remove_key_is_idempotent(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "mx", "mx")
    store.write_key(b"k")
    store.remove_key()
    store.remove_key()
    assert not store.key_path.exists()
    assert not any(p.name.endswith(".tmp") for p in store.directory.iterdir())
    assert os.access(store.directory, os.W_OK)
