"""What `check` says about keys: current, staged next, retired, and the reuse_key setting."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from certbot_dane_tlsa.dnsname import Name
from certbot_dane_tlsa.errors import DaneError
from certbot_dane_tlsa.keystate import KeyState, utcnow
from certbot_dane_tlsa.lineage import Lineage
from certbot_dane_tlsa.policy import Target
from certbot_dane_tlsa.records import TlsaRecord
from certbot_dane_tlsa.rollover import current_info, parse_records, reuse_key_setting, state_store
from certbot_dane_tlsa.rollover_timing import commit_ready_at, prune_ready_at, when_text
from certbot_dane_tlsa.settings import Settings
from certbot_dane_tlsa.tlsa import Material


def report(
    settings: Settings,
    lineage: Lineage,
    material: Material,
    targets: Sequence[Target],
    served: Mapping[Name, set[TlsaRecord]],
    now: datetime | None = None,
) -> list[tuple[str, str, str, str]]:
    """Per owner: (owner, where, status, detail) about keys, staged key, stale records."""
    now = now or utcnow()
    findings: list[tuple[str, str, str, str]] = []
    if settings.mode == "replace":
        for target in targets:
            detail = "mode = replace: a new key at renewal breaks DANE for up to 2 x TTL"
            findings.append((str(target.owner), "rollover", "warning", detail))
        return findings
    store = state_store(settings, lineage.live_dir)
    try:
        state = store.load() or KeyState(store.lineage)
    except DaneError as exc:
        return [("-", str(store.state_path), "error", str(exc))]
    live = current_info(settings, material)
    reuse = reuse_key_setting(lineage.live_dir)
    known = set(parse_records(live.records))
    if state.next is not None:
        known |= set(parse_records(state.next.key.records))
    for old in state.retiring:
        known |= set(parse_records(old.key.records))
    managed = {p for p in settings.params}
    for target in targets:
        owner = str(target.owner)
        published = served.get(target.owner, set())
        cur = set(parse_records(live.records))
        since = state.current.served_since if state.current else None
        status = "ok" if cur <= published else "warning"
        findings.append(
            (owner, "current key", status,
             f"{live.describe()} {'published' if status == 'ok' else 'NOT published'}"
             f" (served since {when_text(since)})")
        )  # fmt: skip
        if state.next is not None:
            nxt = state.next
            served_next = set(parse_records(nxt.key.records)) <= published
            ready = commit_ready_at(nxt, resolver_required=settings.resolver is not None)
            findings.append(
                (owner, "next key", "ok" if served_next else "warning",
                 f"{nxt.key.describe()} staged {when_text(nxt.staged_at)}, "
                 f"{'served' if served_next else 'NOT served'} "
                 f"since {when_text(nxt.served_since)}, "
                 f"commit possible {'after ' + when_text(ready) if ready else 'once served'}")
            )  # fmt: skip
        else:
            findings.append((owner, "next key", "ok", "none staged"))
        for old in state.retiring:
            after = when_text(prune_ready_at(old)) if old.live_since else "the new key is seen live"
            detail = (
                f"{len(old.key.records)} record(s) of retired key {old.key.describe()} wait "
                f"for pruning after {after}"
            )
            findings.append((owner, "stale records", "ok", detail))
        unknown = {r for r in published if r.params in managed and r not in known}
        if unknown:
            findings.append(
                (owner, "stale records", "warning",
                 f"{len(unknown)} published record(s) pin a key that is neither current nor "
                 "staged: the key changed while a record pinned it; run deploy, and renew "
                 "with reuse_key = True")
            )  # fmt: skip
        if reuse is True:
            findings.append((owner, "reuse_key", "ok", "renewal config has reuse_key = True"))
        elif reuse is False:
            findings.append(
                (owner, "reuse_key", "warning",
                 "renewal config lacks reuse_key = True: the next renewal makes a new key and "
                 f"breaks DANE for up to 2 x TTL; run certbot reconfigure --cert-name "
                 f"{lineage.name} --reuse-key")
            )  # fmt: skip
    return findings
