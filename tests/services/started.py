"""Factories for fixtures that start any number of servers of one kind in a test.

Each server is stopped in a ``finally`` after the test, every one even when an earlier stop
fails, so no daemon outlives its test whatever the outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar


class Startable(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


S = TypeVar("S", bound=Startable)


@contextmanager
def started_each(build: Callable[..., S]) -> Iterator[Callable[..., S]]:
    """``make(**kwargs)`` builds server number N with ``build(N, **kwargs)`` and starts it."""
    started: list[S] = []

    def make(**kwargs: Any) -> S:
        server = build(len(started) + 1, **kwargs)
        started.append(server)
        server.start()
        return server

    try:
        yield make
    finally:
        stop_all(started)


def stop_all(servers: Sequence[Startable]) -> None:
    """Stops each one, last started first; re-raises the first error at the end."""
    errors: list[BaseException] = []
    for server in reversed(servers):
        try:
            server.stop()
        except Exception as exc:
            errors.append(exc)
    if errors:
        raise errors[0]
