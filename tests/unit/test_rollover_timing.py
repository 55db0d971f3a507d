"""The timing rules of a rollover, and how a deploy reconciles the state with the lineage.

Pure functions of the state and the clock: no DNS, no files.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from certbot_dane_tlsa.keystate import CurrentKey, KeyInfo, KeyState, NextKey, RetiringKey
from certbot_dane_tlsa.rollover import DeployPlan, _choose_extra, _reconcile
from certbot_dane_tlsa.rollover_timing import (
    commit_hold,
    commit_ready_at,
    commit_wait,
    may_prune,
    prune_ready_at,
)
from certbot_dane_tlsa.settings import RawSettings, build

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


def key(digit: str, shape: str = "ecdsa") -> KeyInfo:
    digest = digit * 64
    if shape == "rsa":
        return KeyInfo(digest, "rsa", 2048, None, [f"3 1 1 {digest}"])
    return KeyInfo(digest, "ecdsa", None, "secp256r1", [f"3 1 1 {digest}"])


def staged(**kwargs: object) -> NextKey:
    values: dict[str, object] = {"ttl": 300, "negative_ttl": 60, "owner_was_new": False}
    values.update(kwargs)
    return NextKey(key("b"), T0, **values)  # type: ignore[arg-type]


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# --- commit -----------------------------------------------------------------------------------


def test_hold_is_two_ttls_plus_negative_ttl_for_a_new_owner() -> None:
    assert commit_hold(300, 60, owner_was_new=False) == 600
    assert commit_hold(300, 60, owner_was_new=True) == 660
    assert commit_hold(0, 0, owner_was_new=True) == 0


def test_commit_waits_until_served_then_two_ttls() -> None:
    nxt = staged()
    assert commit_ready_at(nxt, resolver_required=False) is None
    assert commit_wait(nxt, at(10_000), resolver_required=False) is None
    nxt.served_since = at(100)
    assert commit_ready_at(nxt, resolver_required=False) == at(700)
    assert commit_wait(nxt, at(699), resolver_required=False) == pytest.approx(1.0)
    assert commit_wait(nxt, at(700), resolver_required=False) == 0.0
    assert commit_wait(nxt, at(5_000), resolver_required=False) == 0.0


def test_commit_for_a_new_owner_also_waits_out_the_negative_ttl() -> None:
    nxt = staged(owner_was_new=True, served_since=at(0))
    assert commit_ready_at(nxt, resolver_required=False) == at(660)


def test_commit_with_a_resolver_needs_both_clocks() -> None:
    nxt = staged(served_since=at(0))
    assert commit_ready_at(nxt, resolver_required=True) is None
    nxt.resolver_since = at(400)  # the resolver's cache turned over later
    assert commit_ready_at(nxt, resolver_required=True) == at(1000)
    nxt.resolver_since = at(10)
    assert commit_ready_at(nxt, resolver_required=True) == at(610)  # authoritative clock rules


# --- prune ------------------------------------------------------------------------------------


def test_prune_waits_for_the_new_key_to_be_seen_live_then_two_ttls() -> None:
    old = RetiringKey(key("a"), retired_at=at(0), ttl=300)
    assert prune_ready_at(old) is None
    assert not may_prune(old, at(1_000_000))
    old.live_since = at(50)
    assert prune_ready_at(old) == at(650)
    assert not may_prune(old, at(649))
    assert may_prune(old, at(650))


# --- what a deploy publishes ------------------------------------------------------------------


def settings(**extra: object):  # type: ignore[no-untyped-def]
    raw = RawSettings()
    raw.update(
        {"zone": "example.test", "zone_file": "/nonexistent/db", "live_check": False, **extra}, "t"
    )
    return build(raw)


def plan_for(state: KeyState, live: KeyInfo, now: datetime) -> DeployPlan:
    plan = DeployPlan(settings())
    plan.state = state
    _reconcile(plan, state, live, now)
    _choose_extra(plan, state, material=None, names=[], now=now)  # type: ignore[arg-type]
    return plan


def texts(plan: DeployPlan) -> set[str]:
    return {r.to_text() for r in plan.extra_records}


def test_staged_key_is_published_beside_the_current_one() -> None:
    state = KeyState("mx", current=CurrentKey(key("a"), T0), next=staged())
    plan = plan_for(state, key("a"), at(1))
    assert texts(plan) == set(key("b").records)
    assert not plan.promoted and state.next is not None


def test_committed_key_is_promoted_and_the_old_one_retires() -> None:
    state = KeyState("mx", current=CurrentKey(key("a"), T0), next=staged(served_since=at(5)))
    plan = plan_for(state, key("b"), at(900))
    assert plan.promoted
    assert state.next is None
    assert state.current is not None and state.current.key.spki_sha256 == "b" * 64
    assert [r.key.spki_sha256 for r in state.retiring] == ["a" * 64]
    assert state.retiring[0].retired_at == at(900) and state.retiring[0].live_since is None
    assert texts(plan) == set(key("a").records)  # the old key's record stays


def test_retired_records_stay_until_due_then_go() -> None:
    old = RetiringKey(key("a"), retired_at=at(0), ttl=300, live_since=at(10))
    state = KeyState("mx", current=CurrentKey(key("b"), T0), retiring=[old])
    early = plan_for(state, key("b"), at(309))
    assert texts(early) == set(key("a").records) and early.pruned == []
    late = plan_for(state, key("b"), at(610))
    assert texts(late) == set() and late.pruned == [old]
    assert state.retiring == []


def test_a_key_change_outside_a_rollover_keeps_nothing_of_the_old_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    state = KeyState("mx", current=CurrentKey(key("a", "rsa"), T0))
    plan = plan_for(state, key("c"), at(1))
    assert texts(plan) == set()
    assert state.current is not None and state.current.key.spki_sha256 == "c" * 64
    assert "changed type or size" in caplog.text
    assert "outside a rollover" in caplog.text


def test_a_first_run_records_the_current_key() -> None:
    state = KeyState("mx")
    plan = plan_for(state, key("a"), at(1))
    assert texts(plan) == set()
    assert state.current is not None and state.current.first_seen == at(1)
