"""From a certificate and the settings to the TLSA records that should be published.

This is where "which owners, which records" is decided, and nothing else: no files, no DNS.
Keeping it pure means the deploy hook, the installer and `check` all agree on the same set.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from certbot_dane_tlsa import dnsname
from certbot_dane_tlsa.dnsname import Name
from certbot_dane_tlsa.errors import SettingsError
from certbot_dane_tlsa.lite_dataclasses import dataclass
from certbot_dane_tlsa.records import TlsaParams, TlsaRecord, tlsa_owner
from certbot_dane_tlsa.settings import Settings, ZoneSettings
from certbot_dane_tlsa.tlsa import Material, derive, params_warnings

log = logging.getLogger(__name__)

MAX_RECORDS_PER_OWNER = 12


@dataclass(frozen=True)
class Target:
    """One TLSA owner: a host and port, in the zone that will carry it."""

    host: Name
    port: int
    owner: Name
    zone: ZoneSettings


@dataclass(frozen=True)
class DesiredState:
    targets: tuple[Target, ...]
    desired: dict[Name, frozenset[TlsaRecord]]
    managed: dict[Name, frozenset[TlsaParams]]
    warnings: tuple[str, ...]

    def zones(self) -> list[ZoneSettings]:
        return list({t.zone.origin: t.zone for t in self.targets}.values())

    def targets_in(self, zone: ZoneSettings) -> list[Target]:
        return [t for t in self.targets if t.zone.origin == zone.origin]


def choose_hosts(settings: Settings, certificate_names: Sequence[str]) -> list[Name]:
    """The configured hosts, or else the certificate's names that fall inside a zone."""
    if settings.hosts:
        hosts = list(settings.hosts)
        for host in hosts:
            if settings.zone_for(host) is None:
                zones = ", ".join(z.name for z in settings.zones)
                raise SettingsError(f"host {host} is outside every configured zone ({zones})")
        return hosts
    hosts = []
    for text in certificate_names:
        if text.startswith("*."):
            log.warning("skipping wildcard name %s: TLSA owners need a concrete host", text)
            continue
        try:
            name = dnsname.from_text(text.lower())
        except dnsname.BadName as exc:
            log.warning("skipping the certificate name %r: %s", text, exc)
            continue
        if settings.zone_for(name) is not None:
            hosts.append(name)
    if not hosts:
        names = ", ".join(certificate_names) or "none"
        zones = ", ".join(z.name for z in settings.zones)
        raise SettingsError(
            f"none of the certificate's names ({names}) is inside the configured zone(s) "
            f"({zones}); set 'hosts' or 'zone'"
        )
    return list(dict.fromkeys(hosts))


def desired_state(
    settings: Settings,
    material: Material,
    certificate_names: Sequence[str],
    *,
    extra_records: Iterable[TlsaRecord] = (),
) -> DesiredState:
    """Records for the current certificate, plus ``extra_records`` (e.g. a staged next key)."""
    warnings: list[str] = []
    records = [derive(material, params) for params in settings.params]
    records.extend(extra_records)
    targets = []
    for host in choose_hosts(settings, certificate_names):
        for port in settings.ports:
            owner = tlsa_owner(host, port, settings.proto)
            zone = settings.zone_for(owner)
            if zone is None:  # pragma: no cover - hosts were checked against the zones above
                raise SettingsError(f"{owner} is outside every configured zone")
            targets.append(Target(host, port, owner, zone))
    for port in settings.ports:
        for params in settings.params:
            warnings.extend(params_warnings(params, port))
    record_set = frozenset(records)
    if len(record_set) > MAX_RECORDS_PER_OWNER:
        warnings.append(
            f"{len(record_set)} TLSA records per owner: some senders fail beyond "
            f"{MAX_RECORDS_PER_OWNER}"
        )
    managed_params = frozenset(settings.params) | {r.params for r in record_set}
    return DesiredState(
        targets=tuple(targets),
        desired={t.owner: record_set for t in targets},
        managed={t.owner: managed_params for t in targets},
        warnings=tuple(dict.fromkeys(warnings)),
    )
