"""The rollover state of one lineage on disk: which keys are published, since when.

A rollover spans days and several processes (a stage, a timer's commit, certbot's renewal
run, a prune), and none of them may sleep while it waits for caches to expire. So every
moment that matters is written down here, as JSON that a person can read, replaced atomically
(temp file, fsync, rename) so that a crash leaves either the old or the new state. The
directory also holds the staged next private key, so it is 0700 and every file in it 0600.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import stat
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from certbot_dane_tlsa.atomicfile import write_atomically
from certbot_dane_tlsa.errors import DaneError
from certbot_dane_tlsa.lite_dataclasses import dataclass, field

STATE_FILE = "state.json"
NEXT_KEY_FILE = "next-key.pem"
LOCK_FILE = ".lock"
FORMAT = 1
MAX_EVENTS = 40
LOCK_TIMEOUT = 300.0


class StateError(DaneError):
    """The state file cannot be read or written; the message says which file and why."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def _time_text(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


@dataclass
class KeyInfo:
    """What identifies a key and the records that were published for it."""

    spki_sha256: str
    key_type: str  # "rsa" or "ecdsa"
    key_size: int | None = None  # RSA modulus bits
    curve: str | None = None  # ECDSA curve, certbot's spelling (secp256r1)
    records: list[str] = field(default_factory=list)  # "3 1 1 <hex>"

    def describe(self) -> str:
        shape = f"rsa {self.key_size}" if self.key_type == "rsa" else f"ecdsa {self.curve}"
        return f"{self.spki_sha256[:12]}... ({shape})"

    def same_shape(self, other: KeyInfo) -> bool:
        return (self.key_type, self.key_size, self.curve) == (
            other.key_type,
            other.key_size,
            other.curve,
        )


@dataclass
class CurrentKey:
    key: KeyInfo
    first_seen: datetime
    served_since: datetime | None = None


@dataclass
class NextKey:
    """A staged key: published in DNS, not yet in a certificate."""

    key: KeyInfo
    staged_at: datetime
    ttl: int
    negative_ttl: int
    owner_was_new: bool
    served_since: datetime | None = None  # every authoritative server serves its records
    resolver_since: datetime | None = None  # the validating resolver does, with AD


@dataclass
class RetiringKey:
    """A key that was current until a commit; its records wait for pruning."""

    key: KeyInfo
    retired_at: datetime
    ttl: int
    live_since: datetime | None = None  # the live server was seen presenting its successor


@dataclass
class KeyState:
    lineage: str
    current: CurrentKey | None = None
    next: NextKey | None = None
    retiring: list[RetiringKey] = field(default_factory=list)
    events: list[tuple[datetime, str]] = field(default_factory=list)

    def note(self, when: datetime, text: str) -> None:
        self.events.append((when, text))
        del self.events[:-MAX_EVENTS]

    # --- JSON ----------------------------------------------------------------------------

    def to_json(self) -> str:
        data = {
            "format": FORMAT,
            "lineage": self.lineage,
            "current": None if self.current is None else _current_dict(self.current),
            "next": None if self.next is None else _next_dict(self.next),
            "retiring": [_retiring_dict(r) for r in self.retiring],
            "events": [[_time_text(when), text] for when, text in self.events],
        }
        return json.dumps(data, indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str) -> KeyState:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise StateError(f"{where}: not valid JSON ({exc})") from None
        try:
            return _parse_state(data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            detail = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
            raise StateError(f"{where}: not a rollover state file ({detail})") from None


def _key_dict(key: KeyInfo) -> dict[str, Any]:
    return {
        "spki_sha256": key.spki_sha256,
        "key_type": key.key_type,
        "key_size": key.key_size,
        "curve": key.curve,
        "records": list(key.records),
    }


def _current_dict(current: CurrentKey) -> dict[str, Any]:
    return {
        "key": _key_dict(current.key),
        "first_seen": _time_text(current.first_seen),
        "served_since": _time_text(current.served_since),
    }


def _next_dict(nxt: NextKey) -> dict[str, Any]:
    return {
        "key": _key_dict(nxt.key),
        "staged_at": _time_text(nxt.staged_at),
        "ttl": nxt.ttl,
        "negative_ttl": nxt.negative_ttl,
        "owner_was_new": nxt.owner_was_new,
        "served_since": _time_text(nxt.served_since),
        "resolver_since": _time_text(nxt.resolver_since),
    }


def _retiring_dict(old: RetiringKey) -> dict[str, Any]:
    return {
        "key": _key_dict(old.key),
        "retired_at": _time_text(old.retired_at),
        "ttl": old.ttl,
        "live_since": _time_text(old.live_since),
    }


def _time(value: Any, name: str) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"{name} is not a time")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"{name} has no time zone")
    return parsed


def _opt_time(value: Any, name: str) -> datetime | None:
    return None if value is None else _time(value, name)


def _int(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} is not a whole number")
    return value


def _parse_key(data: Any) -> KeyInfo:
    digest = data["spki_sha256"]
    if not isinstance(digest, str) or len(digest) != 64:
        raise ValueError("spki_sha256 is not a SHA-256 hex digest")
    bytes.fromhex(digest)
    key_type = data["key_type"]
    if key_type not in ("rsa", "ecdsa"):
        raise ValueError(f"key_type {key_type!r} is not rsa or ecdsa")
    records = data["records"]
    if not isinstance(records, list) or not all(isinstance(r, str) for r in records):
        raise ValueError("records is not a list of strings")
    size = data.get("key_size")
    curve = data.get("curve")
    return KeyInfo(
        digest,
        key_type,
        None if size is None else _int(size, "key_size"),
        None if curve is None else str(curve),
        list(records),
    )


def _parse_state(data: Any) -> KeyState:
    if not isinstance(data, dict):
        raise ValueError("the top level is not an object")
    if data.get("format") != FORMAT:
        raise ValueError(f"format {data.get('format')!r} is not {FORMAT}")
    lineage = data["lineage"]
    if not isinstance(lineage, str):
        raise ValueError("lineage is not a string")
    state = KeyState(lineage)
    cur = data.get("current")
    if cur is not None:
        state.current = CurrentKey(
            _parse_key(cur["key"]),
            _time(cur["first_seen"], "first_seen"),
            _opt_time(cur.get("served_since"), "served_since"),
        )
    nxt = data.get("next")
    if nxt is not None:
        state.next = NextKey(
            _parse_key(nxt["key"]),
            _time(nxt["staged_at"], "staged_at"),
            _int(nxt["ttl"], "ttl"),
            _int(nxt["negative_ttl"], "negative_ttl"),
            bool(nxt["owner_was_new"]),
            _opt_time(nxt.get("served_since"), "served_since"),
            _opt_time(nxt.get("resolver_since"), "resolver_since"),
        )
    for old in data.get("retiring") or []:
        state.retiring.append(
            RetiringKey(
                _parse_key(old["key"]),
                _time(old["retired_at"], "retired_at"),
                _int(old["ttl"], "ttl"),
                _opt_time(old.get("live_since"), "live_since"),
            )
        )
    for item in data.get("events") or []:
        when, text = item
        state.events.append((_time(when, "event time"), str(text)))
    return state


# --- the directory -----------------------------------------------------------------------


def write_private_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``, mode 0600, so a reader sees all of it or none of it."""
    write_atomically(path, data, 0o600)


class StateStore:
    """The per-lineage directory: ``state.json``, ``next-key.pem`` and a lock file."""

    def __init__(self, directory: Path, lineage: str) -> None:
        self.directory = Path(directory)
        self.lineage = lineage

    @property
    def state_path(self) -> Path:
        return self.directory / STATE_FILE

    @property
    def key_path(self) -> Path:
        return self.directory / NEXT_KEY_FILE

    def ensure_directory(self) -> None:
        """Create it 0700; tighten an existing one that others could read."""
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            mode = stat.S_IMODE(self.directory.stat().st_mode)
            if mode & 0o077:
                os.chmod(self.directory, 0o700)
        except OSError as exc:
            raise StateError(
                f"cannot create the state directory {self.directory}: {exc.strerror}"
            ) from None

    @contextlib.contextmanager
    def lock(self, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
        """One process at a time changes a lineage's state (flock, dropped if we crash)."""
        self.ensure_directory()
        fd = os.open(self.directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                    if time.monotonic() >= deadline:
                        raise StateError(
                            f"{self.directory}: another certbot-dane-tlsa run holds the lock "
                            f"(waited {timeout:g} s)"
                        ) from None
                    time.sleep(0.2)
            yield
        finally:
            os.close(fd)

    def raw(self) -> bytes | None:
        try:
            return self.state_path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(f"cannot read {self.state_path}: {exc.strerror}") from None

    def load(self) -> KeyState | None:
        data = self.raw()
        if data is None:
            return None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise StateError(
                f"{self.state_path}: not UTF-8 text; the file is corrupt. Move it away to start "
                "over (a staged next key is then forgotten and must be staged again)"
            ) from None
        try:
            state = KeyState.from_json(text, str(self.state_path))
        except StateError as exc:
            raise StateError(
                f"{exc}. Move the file away to start over (a staged next key is then "
                "forgotten and must be staged again)"
            ) from None
        if state.lineage != self.lineage:
            raise StateError(
                f"{self.state_path} belongs to lineage {state.lineage!r}, not {self.lineage!r}"
            )
        return state

    def load_or_new(self) -> KeyState:
        return self.load() or KeyState(self.lineage)

    def save(self, state: KeyState) -> None:
        self.ensure_directory()
        try:
            write_private_atomically(self.state_path, state.to_json().encode("utf-8"))
        except OSError as exc:
            raise StateError(f"cannot write {self.state_path}: {exc.strerror}") from None

    def restore_raw(self, data: bytes | None) -> None:
        """Put back exactly what :meth:`raw` returned earlier (None: there was no file)."""
        if data is None:
            with contextlib.suppress(FileNotFoundError):
                self.state_path.unlink()
            return
        write_private_atomically(self.state_path, data)

    def write_key(self, pem: bytes) -> Path:
        self.ensure_directory()
        write_private_atomically(self.key_path, pem)
        return self.key_path

    def remove_key(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.key_path.unlink()
