"""pytest fixture for a real Dovecot on loopback (IMAP over implicit TLS).

Like the Postfix fixtures, it keeps a list of what it started and stops each one in a
``finally`` after ``yield``, so no Dovecot master outlives its test, whatever the outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from certbot_dane_tlsa.lab.dovecot import DovecotInstance

DovecotFactory = Callable[..., DovecotInstance]


@pytest.fixture
def dovecot_factory(tmp_path: Path) -> Iterator[DovecotFactory]:
    """``dovecot_factory(key=..., fullchain=..., hostname="mx.example.test", port=None,
    address="127.0.0.1")`` -> a started DovecotInstance; ``.doveadm_argv("reload")`` reloads it.
    """
    started: list[DovecotInstance] = []

    def make(
        *, key: Path, fullchain: Path, hostname: str = "mx.example.test", **kwargs: Any
    ) -> DovecotInstance:
        instance = DovecotInstance(
            tmp_path / f"dovecot-{len(started) + 1}",
            hostname=hostname,
            key=key,
            fullchain=fullchain,
            **kwargs,
        )
        started.append(instance)
        instance.start()
        return instance

    try:
        yield make
    finally:
        errors: list[BaseException] = []
        for instance in reversed(started):
            try:
                instance.stop()
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]
