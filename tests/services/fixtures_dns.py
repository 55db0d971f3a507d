"""pytest fixtures that hand tests real, started named and unbound instances on loopback.

Each factory remembers what it started and stops it at teardown, which pytest runs whether the
test passed or failed, so no daemon outlives its test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.services.named import NamedServer, ZoneSpec
from tests.services.unbound import UnboundResolver

EXAMPLE_ZONE = "example.test"
EXAMPLE_ZONE_TEXT = """\
$TTL 300
@       IN SOA ns1.example.test. hostmaster.example.test. (
                1       ; serial
                3600    ; refresh
                600     ; retry
                86400   ; expire
                300 )   ; negative TTL
        IN NS  ns1
ns1     IN A   127.0.0.1
mail    IN A   127.0.0.1
mx      IN A   127.0.0.1
"""

NamedFactory = Callable[..., NamedServer]
UnboundFactory = Callable[..., UnboundResolver]


@pytest.fixture
def named_factory(tmp_path: Path) -> Iterator[NamedFactory]:
    """``named_factory(zones, **NamedServer kwargs)`` -> a started NamedServer.

    Each call gets its own directory under tmp_path (named-1, named-2, ...).
    """
    started: list[NamedServer] = []

    def make(zones: list[ZoneSpec], **kwargs: Any) -> NamedServer:
        timeout = kwargs.pop("timeout", 20.0)
        server = NamedServer(tmp_path / f"named-{len(started) + 1}", zones, **kwargs)
        started.append(server)
        server.start(timeout)
        return server

    try:
        yield make
    finally:
        # Secondaries first, so the primary does not log NOTIFY failures to dead peers.
        for server in reversed(started):
            server.stop()


@pytest.fixture
def signed_zone_server(named_factory: NamedFactory) -> NamedServer:
    """One named serving an inline-signed ``example.test`` (see EXAMPLE_ZONE_TEXT)."""
    return named_factory([ZoneSpec(EXAMPLE_ZONE, EXAMPLE_ZONE_TEXT)])


@pytest.fixture
def unbound_factory(tmp_path: Path) -> Iterator[UnboundFactory]:
    """``unbound_factory(stubs, address=None, port=None)`` -> a started UnboundResolver.

    ``stubs`` may also be a single NamedServer, meaning a stub zone for each of its zones.
    """
    started: list[UnboundResolver] = []

    def make(stubs: list[tuple[str, NamedServer]] | NamedServer, **kwargs: Any) -> UnboundResolver:
        if isinstance(stubs, NamedServer):
            stubs = [(zone.origin, stubs) for zone in stubs.zones]
        resolver = UnboundResolver(tmp_path / f"unbound-{len(started) + 1}", stubs, **kwargs)
        started.append(resolver)
        resolver.start()
        return resolver

    try:
        yield make
    finally:
        for resolver in reversed(started):
            resolver.stop()
