"""The one pipeline behind every front door: lineage -> records -> zone -> DNS -> services.

`deploy` publishes and proves; `check` only proves. The deploy hook, the certbot installer and
the monitoring command all come through here with a :class:`Settings` object, so they cannot
drift apart.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from certbot_dane_tlsa.dnsname import Name
from certbot_dane_tlsa.errors import DaneError, VerificationError
from certbot_dane_tlsa.keystate import utcnow
from certbot_dane_tlsa.lineage import Lineage
from certbot_dane_tlsa.lite_dataclasses import dataclass, field
from certbot_dane_tlsa.policy import DesiredState, Target, desired_state
from certbot_dane_tlsa.publish import Outcome, publish_zone_file
from certbot_dane_tlsa.records import TlsaParams, TlsaRecord
from certbot_dane_tlsa.runner import describe
from certbot_dane_tlsa.services import planned_reloads, run_reloads
from certbot_dane_tlsa.settings import Settings, ZoneSettings

log = logging.getLogger(__name__)


@dataclass
class DeployReport:
    outcomes: list[Outcome] = field(default_factory=list)
    verified: bool = False
    live_checked: bool = False
    every_zone_verified: bool = False


def _expected(state: DesiredState, zone: ZoneSettings) -> dict[Name, frozenset[TlsaRecord]]:
    return {t.owner: state.desired[t.owner] for t in state.targets_in(zone)}


def _managed(state: DesiredState, zone: ZoneSettings) -> dict[Name, frozenset[TlsaParams]]:
    return {t.owner: state.managed[t.owner] for t in state.targets_in(zone)}


def _servers_lag(zone: ZoneSettings, state: DesiredState) -> bool:
    """One quick look: does any server serve something other than the file's records?"""
    import dns.exception

    from certbot_dane_tlsa.verify import served_tlsa

    managed = _managed(state, zone)
    for server in zone.nameservers:
        for owner, want in _expected(state, zone).items():
            try:
                served = served_tlsa(server.host, server.port, owner)
            except (dns.exception.DNSException, OSError):
                return True
            if frozenset(r for r in served.records if r.params in managed[owner]) != want:
                return True
    return False


def _warn_key_change(outcome: Outcome) -> None:
    """A record that pinned the old key was replaced: cached copies now fail until they expire."""
    if outcome.edit is None:
        return
    for change in outcome.edit.changes:
        if change.before and change.after and not (change.before & change.after):
            log.warning(
                "the key behind %s changed while the old record was still published: senders "
                "that cached it may fail for up to %d s; renew with reuse_key = True "
                "(certbot --reuse-key) or use a key rollover",
                change.owner,
                2 * change.ttl,
            )


def _publish(zone: ZoneSettings, state: DesiredState, *, dry_run: bool, out: TextIO) -> Outcome:
    if zone.backend == "rfc2136":
        from certbot_dane_tlsa.rfc2136 import publish_rfc2136

        return publish_rfc2136(zone, state, dry_run=dry_run, out=out)
    # A lost reload (say, a run killed between the swap and rndc) must heal on the next run.
    # With verify = false nothing may wait on DNS (a server that is not there would cost a
    # query timeout at every renewal), so reload unasked: for a file named already has
    # loaded, that is a no-op ("zone reload up-to-date").
    lag_check = (lambda: _servers_lag(zone, state)) if zone.verify else (lambda: True)
    return publish_zone_file(zone, state, dry_run=dry_run, out=out, reload_when_unchanged=lag_check)


def deploy(
    settings: Settings,
    lineage_dir: Path,
    *,
    dry_run: bool,
    out: TextIO,
    reload_unchanged: bool = True,
) -> DeployReport:
    """Publish, verify, reload, prove. Raises :class:`DaneError` at the first failure.

    ``reload_unchanged`` is True after a renewal (new certificate files need a reload even
    when the key, and so DNS, did not change) and False for reconciliation runs.
    """
    from certbot_dane_tlsa.rollover import deploy_plan

    lineage = Lineage.from_dir(lineage_dir)
    material = lineage.material()
    names = lineage.names()
    with deploy_plan(settings, lineage, material, dry_run=dry_run) as plan:
        state = desired_state(settings, material, names, extra_records=plan.extra_records)
        report = _deploy(settings, state, dry_run=dry_run, out=out)
        plan.published(
            verified=report.every_zone_verified, added=_added(report.outcomes), now=utcnow()
        )
        reloads = planned_reloads(settings)
        if not reload_unchanged and not any(o.changed for o in report.outcomes):
            reloads = []
        if dry_run:
            for reload in reloads:
                out.write(f"# would run: {describe(reload.argv)}\n")
            return report
        run_reloads(reloads)
        if reloads and settings.live_check:
            live_check(settings, state, timeout=settings.live_check_timeout)
            report.live_checked = True
        plan.finish(material, names, now=utcnow())
    return report


def _added(outcomes: list[Outcome]) -> set[TlsaRecord]:
    added: set[TlsaRecord] = set()
    for outcome in outcomes:
        if outcome.edit is not None:
            for change in outcome.edit.changes:
                added |= set(change.after) - set(change.before)
    return added


def _deploy(settings: Settings, state: DesiredState, *, dry_run: bool, out: TextIO) -> DeployReport:
    """Publish and verify every zone; ``verified`` only when every zone was verified."""
    for warning in state.warnings:
        log.warning("%s", warning)
    report = DeployReport()
    all_verified = True
    for zone in state.zones():
        outcome = _publish(zone, state, dry_run=dry_run, out=out)
        report.outcomes.append(outcome)
        if dry_run:
            continue
        _warn_key_change(outcome)
        if zone.verify:
            from certbot_dane_tlsa.nsverify import verify_authoritative

            servers = verify_authoritative(
                zone,
                _expected(state, zone),
                _managed(state, zone),
                timeout=settings.verify_timeout,
                minimum_serial=outcome.new_serial if zone.backend == "rfc2136" else None,
            )
            log.info(
                "zone %s: %d authoritative server(s) serve the records", zone.name, len(servers)
            )
            report.verified = True
        else:
            all_verified = False
            log.warning("zone %s: verify = false, so nobody checked what DNS serves", zone.name)
    report.every_zone_verified = all_verified and bool(report.outcomes) and not dry_run
    return report


def _live_mode(settings: Settings, port: int) -> str:
    from certbot_dane_tlsa.livecheck import default_tls_mode

    return settings.tls_check or default_tls_mode(port)


def live_check_target(
    settings: Settings, target: Target, records: frozenset[TlsaRecord]
) -> list[TlsaRecord]:
    """The records that the key the server presents right now matches (empty: none)."""
    from certbot_dane_tlsa.livecheck import chain_matches, fetch_chain

    host = target.host.to_text(omit_final_dot=True)
    chain = fetch_chain(
        settings.connect_address(target.host),
        target.port,
        mode=_live_mode(settings, target.port),
        server_name=host,
    )
    return chain_matches(chain, records)


def live_check(settings: Settings, state: DesiredState, *, timeout: float) -> None:
    """After a reload, wait until every server presents a key that the records vouch for."""
    deadline = time.monotonic() + timeout
    for target in state.targets:
        where = f"{settings.connect_address(target.host)}:{target.port}"
        while True:
            try:
                matched = live_check_target(settings, target, state.desired[target.owner])
                problem = "" if matched else "presents a key that no published TLSA record matches"
            except VerificationError as exc:
                # fetch_chain's messages start with the address; say it once.
                problem = str(exc).removeprefix(f"{where}: ")
            if not problem:
                log.info("live server %s presents a key that %s vouches for", where, target.owner)
                break
            if time.monotonic() >= deadline:
                sep = " " if problem.startswith("presents") else ": "
                raise VerificationError(f"live server {where}{sep}{problem} (after {timeout:g} s)")
            time.sleep(1.0)


# --- check ------------------------------------------------------------------------------------


@dataclass
class Finding:
    owner: str
    where: str
    status: str  # "ok", "mismatch", "error"; "warning" informs and keeps the exit code
    detail: str


@dataclass
class CheckReport:
    findings: list[Finding] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        statuses = {f.status for f in self.findings}
        if "mismatch" in statuses:
            return 2
        if "error" in statuses or not self.findings:
            return 1
        return 0

    def summary(self) -> str:
        counts = {s: sum(f.status == s for f in self.findings) for s in ("ok", "mismatch", "error")}
        first_bad = next((f for f in self.findings if f.status in ("mismatch", "error")), None)
        first_bad = first_bad or next((f for f in self.findings if f.status != "ok"), None)
        line = (
            f"{counts['ok']} ok, {counts['mismatch']} mismatch, {counts['error']} could not check"
        )
        warnings = sum(f.status == "warning" for f in self.findings)
        if warnings:
            line += f", {warnings} warning(s)"
        if first_bad is not None:
            line += f"; {first_bad.owner} at {first_bad.where}: {first_bad.detail}"
        return line

    def to_json(self) -> str:
        return json.dumps(
            {
                "exit_code": self.exit_code,
                "summary": self.summary(),
                "findings": [f.__dict__ for f in self.findings],
            },
            indent=2,
        )


def check(settings: Settings, lineage_dir: Path) -> CheckReport:
    """Does DNS vouch for the current certificate, and does the live server present it?"""
    import dns.exception

    from certbot_dane_tlsa.nsverify import authoritative_servers
    from certbot_dane_tlsa.verify import served_tlsa, zone_is_signed

    report = CheckReport()
    try:
        lineage = Lineage.from_dir(lineage_dir)
        material = lineage.material()
        state = desired_state(settings, material, lineage.names())
    except DaneError as exc:
        report.findings.append(Finding("-", str(lineage_dir), "error", str(exc)))
        return report
    served_by_owner: dict[Name, set[TlsaRecord]] = {}
    for target in state.targets:
        current = state.desired[target.owner]
        try:
            servers = authoritative_servers(target.zone)
        except DaneError as exc:
            report.findings.append(Finding(str(target.owner), "NS set", "error", str(exc)))
            continue
        for server in servers:
            where = f"nameserver {server}"
            try:
                served = served_tlsa(server.host, server.port, target.owner)
                signed = zone_is_signed(server.host, server.port, target.zone.origin)
            except (dns.exception.DNSException, OSError) as exc:
                report.findings.append(
                    Finding(str(target.owner), where, "error", f"no answer: {exc}")
                )
                continue
            served_by_owner.setdefault(target.owner, set()).update(served.records)
            missing = current - served.records
            if missing:
                detail = f"does not serve {', '.join(r.to_text()[:18] + '...' for r in missing)}"
                report.findings.append(Finding(str(target.owner), where, "mismatch", detail))
            elif signed and not served.signed:
                report.findings.append(
                    Finding(str(target.owner), where, "mismatch", "TLSA served without RRSIG")
                )
            else:
                stale = served.records - current
                detail = "serves the current records"
                if stale:
                    detail += f" (+{len(stale)} other record(s))"
                report.findings.append(Finding(str(target.owner), where, "ok", detail))
    if settings.live_check:
        _check_live(settings, state, served_by_owner, report)
    from certbot_dane_tlsa.rollover_report import report as rollover_report

    for owner, where, status, detail in rollover_report(
        settings, lineage, material, state.targets, served_by_owner
    ):
        report.findings.append(Finding(owner, where, status, detail))
    return report


def _check_live(
    settings: Settings,
    state: DesiredState,
    served: Mapping[Name, set[TlsaRecord]],
    report: CheckReport,
) -> None:
    for target in state.targets:
        where = f"live {settings.connect_address(target.host)}:{target.port}"
        published = frozenset(served.get(target.owner, set()))
        try:
            matched = live_check_target(settings, target, published)
        except VerificationError as exc:
            report.findings.append(Finding(str(target.owner), where, "error", str(exc)))
            continue
        if matched:
            detail = f"presents a key matching {matched[0].to_text()[:18]}..."
            report.findings.append(Finding(str(target.owner), where, "ok", detail))
        else:
            report.findings.append(
                Finding(str(target.owner), where, "mismatch", "no served TLSA record matches")
            )
