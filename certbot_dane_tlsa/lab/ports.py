"""Ports and loopback addresses for test services, safe against parallel test processes.

A port that is merely free now can be taken by another pytest process a moment later, before our
daemon binds it. So every pick is also claimed with an exclusive ``flock`` on a file in a shared
directory, and the claim is held until the service is stopped (or this process exits, which
drops the lock by itself: no stale claims after a crash). Ports come from below the kernel's
ephemeral range so that outgoing sockets of other tests cannot collide with them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import socket
import tempfile
from pathlib import Path

_CLAIM_DIR = Path(tempfile.gettempdir()) / "certbot-dane-tlsa-test-ports"
_LOW, _HIGH = 20000, 32000
_claims: dict[tuple[str, int], int] = {}


def _bindable(address: str, port: int) -> bool:
    """True when both a TCP listener and a UDP socket can bind ``address:port`` now."""
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            if kind == socket.SOCK_STREAM:
                # Same option as the daemons use, so TIME_WAIT leftovers do not block a reuse.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((address, port))
            except OSError:
                return False
    return True


def _claim(address: str, port: int) -> bool:
    key = (address, port)
    if key in _claims:
        return False
    _CLAIM_DIR.mkdir(mode=0o777, exist_ok=True)
    fd = os.open(_CLAIM_DIR / f"{address}-{port}.lock", os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    if not _bindable(address, port):
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
        return False
    _claims[key] = fd
    return True


def free_port(address: str = "127.0.0.1", *, attempts: int = 200) -> int:
    """A port on ``address`` free for TCP and UDP, claimed until :func:`release`."""
    rng = random.SystemRandom()
    for _ in range(attempts):
        port = rng.randrange(_LOW, _HIGH)
        if _claim(address, port):
            return port
    raise RuntimeError(f"no port free for both TCP and UDP on {address} after {attempts} tries")


def free_address(port: int = 53) -> str:
    """The lowest 127.0.0.x (x >= 2) where ``port`` is free for TCP and UDP, claimed.

    Lowest first, so a lone test run gets 127.0.0.2 as in the docs; 127.0.0.1 is left to named.
    """
    for last in range(2, 255):
        address = f"127.0.0.{last}"
        if _claim(address, port):
            return address
    raise RuntimeError(f"no 127.0.0.x address has port {port} free for TCP and UDP")


def claim(address: str, port: int) -> bool:
    """Claim a port the caller chose itself; False when it is taken or claimed elsewhere."""
    return _claim(address, port)


def release(address: str, port: int) -> None:
    """Give a claimed port back (after the daemon that used it has exited)."""
    fd = _claims.pop((address, port), None)
    if fd is not None:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
