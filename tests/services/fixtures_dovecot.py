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
from tests.services.started import started_each

DovecotFactory = Callable[..., DovecotInstance]


@pytest.fixture
def dovecot_factory(tmp_path: Path) -> Iterator[DovecotFactory]:
    """``dovecot_factory(key=..., fullchain=..., hostname="mx.example.test", port=None,
    address="127.0.0.1")`` -> a started DovecotInstance; ``.doveadm_argv("reload")`` reloads it.
    """

    def build(
        number: int, *, key: Path, fullchain: Path, hostname: str = "mx.example.test", **kwargs: Any
    ) -> DovecotInstance:
        return DovecotInstance(
            tmp_path / f"dovecot-{number}",
            hostname=hostname,
            key=key,
            fullchain=fullchain,
            **kwargs,
        )

    with started_each(build) as make:
        yield make
