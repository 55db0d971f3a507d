"""When a staged key may go live, and when a retired key's records may go.

Pure functions of the on-disk state and the clock, so the rules that keep DANE senders safe
(RFC 7671 section 8.1: the new record must have been visible for 2 x TTL, plus the negative
TTL for a new owner, before the key changes) can be tested without DNS or certbot.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from certbot_dane_tlsa.keystate import NextKey, RetiringKey


def commit_hold(ttl: int, negative_ttl: int, owner_was_new: bool) -> int:
    """Seconds a next key's records must have been served before the key may go live."""
    return 2 * ttl + (negative_ttl if owner_was_new else 0)


def commit_ready_at(nxt: NextKey, *, resolver_required: bool) -> datetime | None:
    """When the staged key may go live; None while a clock has not started."""
    if nxt.served_since is None:
        return None
    ready = nxt.served_since + timedelta(
        seconds=commit_hold(nxt.ttl, nxt.negative_ttl, nxt.owner_was_new)
    )
    if resolver_required:
        if nxt.resolver_since is None:
            return None
        ready = max(ready, nxt.resolver_since + timedelta(seconds=2 * nxt.ttl))
    return ready


def commit_wait(nxt: NextKey, now: datetime, *, resolver_required: bool) -> float | None:
    """Seconds until commit is allowed (0: now); None: not served yet, so unknown."""
    ready = commit_ready_at(nxt, resolver_required=resolver_required)
    if ready is None:
        return None
    return max(0.0, (ready - now).total_seconds())


def prune_ready_at(old: RetiringKey) -> datetime | None:
    """When a retiring key's records may go; None until its successor was seen live."""
    if old.live_since is None:
        return None
    return old.live_since + timedelta(seconds=2 * old.ttl)


def may_prune(old: RetiringKey, now: datetime) -> bool:
    ready = prune_ready_at(old)
    return ready is not None and now >= ready


def when_text(moment: datetime | None) -> str:
    return "-" if moment is None else moment.isoformat(timespec="seconds")


def wait_text(nxt: NextKey, now: datetime, *, resolver_required: bool) -> str:
    hold = commit_hold(nxt.ttl, nxt.negative_ttl, nxt.owner_was_new)
    why = f"2 x TTL {nxt.ttl} s"
    if nxt.owner_was_new:
        why += f" + negative TTL {nxt.negative_ttl} s (the owner had no TLSA before)"
    wait = commit_wait(nxt, now, resolver_required=resolver_required)
    if wait is None and nxt.served_since is not None:
        # Only the resolver lags: its cache holds the old RRset for at most one TTL more.
        return (
            f"the validating resolver may cache the old RRset for up to {nxt.ttl} s; "
            f"try again in {nxt.ttl} s, and {2 * nxt.ttl} s after it first serves the next key"
        )
    if wait is None:
        clocks = "every authoritative server"
        if resolver_required:
            clocks += " and the validating resolver"
        return (
            f"the next key's records must be served by {clocks} for {hold} s ({why}); "
            "the wait starts once they are"
        )
    ready = commit_ready_at(nxt, resolver_required=resolver_required)
    return (
        f"the next key's records must be served for {hold} s ({why}); "
        f"try again in {wait:.0f} s (after {when_text(ready)})"
    )
