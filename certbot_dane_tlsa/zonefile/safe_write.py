"""Replace a zone file without ever leaving a half-written one, and keep a way back.

The new content goes to a temporary file in the same directory (same file system, so the final
rename is atomic), is flushed to disk, gets the original's owner, group and mode, and only then
is renamed over the zone. The previous version stays reachable through a hard link, so restoring
it is another atomic rename. Every install and restore gives the file a fresh mtime, because
``rndc reload`` skips a zone whose file did not get newer.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import time
from pathlib import Path
from types import TracebackType

from certbot_dane_tlsa.atomicfile import fsync_dir
from certbot_dane_tlsa.errors import ZoneError
from certbot_dane_tlsa.lite_dataclasses import dataclass
from certbot_dane_tlsa.zonefile.editor import ZoneEdit

_TAG = "dane-tlsa"


def _lock_path(target: Path) -> Path:
    return target.parent / f".{target.name}.{_TAG}.lock"


def _backup_path(target: Path) -> Path:
    return target.parent / f".{target.name}.{_TAG}.bak"


def _rename_over(src: Path, dst: Path) -> None:
    """Atomically rename ``src`` to ``dst`` and make sure ``src`` is gone afterwards.

    When both names are already links to one inode (after a restore, or after a kill between
    keeping the backup and the swap), rename(2) succeeds without doing anything and ``src``
    would stay behind as a stray temporary file; ``dst`` already is that file, so dropping the
    ``src`` link is all that is left to do.
    """
    os.replace(src, dst)
    with contextlib.suppress(FileNotFoundError):
        src.unlink()


def _touch_fresh(path: Path) -> None:
    """Give ``path`` an mtime later than any it had, even on coarse-clock file systems."""
    before = path.stat().st_mtime_ns
    now = time.time_ns()
    os.utime(path, ns=(now, max(now, before + 1)))


class ZoneLock:
    """Exclusive lock for one zone file, held across plan, write, check and reload.

    The lock file sits beside the zone and is never deleted: deleting it would let a second
    process lock a new inode while a first still holds the old one.
    """

    def __init__(self, path: Path, timeout: float = 60.0) -> None:
        self.path = path
        self.lock_path = _lock_path(path)
        self.timeout = timeout
        self._fd: int | None = None

    def __enter__(self) -> ZoneLock:
        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise ZoneError(f"{self.lock_path}: cannot open the lock file: {exc.strerror}") from (
                None
            )
        deadline = time.monotonic() + self.timeout
        delay = 0.01
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                    os.close(fd)
                    raise ZoneError(f"{self.lock_path}: cannot lock: {exc.strerror}") from None
            if time.monotonic() >= deadline:
                os.close(fd)
                raise ZoneError(
                    f"{self.lock_path}: another run still holds the zone lock after "
                    f"{self.timeout:g} s"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.2)
        self._fd = fd
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


@dataclass
class Backup:
    target: Path
    saved: Path

    def restore(self) -> None:
        """Put the saved version back (atomically) with a fresh mtime."""
        tmp = self.target.parent / f".{self.target.name}.{_TAG}.{secrets.token_hex(8)}.tmp"
        try:
            os.link(self.saved, tmp)
            _touch_fresh(tmp)
            _rename_over(tmp, self.target)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise ZoneError(f"{self.target}: cannot restore from {self.saved}: {exc}") from None
        fsync_dir(self.target.parent)


def write_candidate(edit: ZoneEdit) -> Path:
    """Write the edited zone beside the original; the caller checks it before installing."""
    target = edit.path
    st = target.stat()
    tmp = target.parent / f".{target.name}.{_TAG}.{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb", buffering=1 << 20) as out:
            edit.write_to(out)
            out.flush()
            os.fchown(out.fileno(), st.st_uid, st.st_gid)
            os.fchmod(out.fileno(), st.st_mode & 0o7777)
            os.fsync(out.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return tmp


def install_candidate(candidate: Path, target: Path) -> Backup:
    """Keep the current zone as the backup, then rename the candidate over it."""
    saved = _backup_path(target)
    staging = target.parent / f".{target.name}.{_TAG}.{secrets.token_hex(8)}.tmp"
    try:
        os.link(target, staging)
        _rename_over(staging, saved)
    except OSError as exc:
        with contextlib.suppress(OSError):
            staging.unlink()
        raise ZoneError(f"{target}: cannot keep a backup at {saved}: {exc.strerror}") from None
    try:
        _touch_fresh(candidate)
        os.replace(candidate, target)
    except OSError as exc:
        raise ZoneError(f"{target}: cannot install the new zone: {exc.strerror}") from None
    fsync_dir(target.parent)
    return Backup(target=target, saved=saved)


def discard_candidate(candidate: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        candidate.unlink()


def clean_stale_temp_files(target: Path) -> list[Path]:
    """Remove temporary files a killed run left behind (call it while holding the lock)."""
    removed = []
    for path in target.parent.glob(f".{target.name}.{_TAG}.*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    return removed
