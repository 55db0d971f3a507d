"""pytest fixtures for the mail side: Pebble + certbot, Postfix on loopback, podman + docker CLI.

Every fixture keeps a list of what it started and stops it in a ``finally`` after ``yield``,
which pytest runs whether the test passed, failed or errored in another fixture, so no daemon,
container or alternate_config_directories entry outlives its test.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.services.containers import PodmanDocker, PostfixContainer
from tests.services.pebble import Certbot, Pebble
from tests.services.postfix import PostfixInstance
from tests.services.started import started_each

PostfixFactory = Callable[..., PostfixInstance]
PostfixContainerFactory = Callable[..., PostfixContainer]


@pytest.fixture
def pebble(tmp_path: Path) -> Iterator[Pebble]:
    """A started Pebble that accepts every challenge (about 0.3 s to start)."""
    server = Pebble(tmp_path / "pebble")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def certbot_env(pebble: Pebble, tmp_path: Path) -> Certbot:
    """certbot bound to the test's Pebble, with config/work/logs dirs under tmp_path/certbot."""
    return Certbot(pebble, tmp_path / "certbot")


@pytest.fixture
def postfix_factory(tmp_path: Path) -> Iterator[PostfixFactory]:
    """``postfix_factory(key=..., fullchain=..., hostname="mx.example.test", port=None,
    address="127.0.0.1")`` -> a started PostfixInstance in tmp_path/postfix-N."""

    def build(
        number: int, *, key: Path, fullchain: Path, hostname: str = "mx.example.test", **kwargs: Any
    ) -> PostfixInstance:
        return PostfixInstance(
            tmp_path / f"postfix-{number}",
            hostname=hostname,
            key=key,
            fullchain=fullchain,
            **kwargs,
        )

    with started_each(build) as make:
        yield make


@pytest.fixture
def podman_docker(tmp_path: Path) -> Iterator[PodmanDocker]:
    """A podman API service on tmp_path/podman/podman.sock; ``.docker(...)`` is the real CLI."""
    service = PodmanDocker(tmp_path / "podman")
    service.start()
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture
def postfix_container_factory(
    podman_docker: PodmanDocker, tmp_path: Path
) -> Iterator[PostfixContainerFactory]:
    """``postfix_container_factory(key=..., fullchain=..., hostname=..., volumes=(...))`` ->
    a started PostfixContainer with a unique name (``.name``), reloadable through docker exec.

    Mount what the keys live in (e.g. certbot's config_dir, whose live/ links point into
    archive/) with ``volumes=[(dir, dir)]``; the container's workdir is mounted already.
    """

    def build(
        number: int, *, key: Path, fullchain: Path, hostname: str = "mx.example.test", **kwargs: Any
    ) -> PostfixContainer:
        name = kwargs.pop("name", f"cdt-mail-{uuid.uuid4().hex[:10]}")
        return PostfixContainer(
            podman_docker,
            tmp_path / f"postfix-container-{number}",
            name=name,
            hostname=hostname,
            key=key,
            fullchain=fullchain,
            **kwargs,
        )

    with started_each(build) as make:
        yield make
