"""Shared checks for the zone-editor tests: parse with dnspython, run named-checkzone, apply
splices independently of the editor's own writer."""

from __future__ import annotations

import io
import os
import re
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import dns.name
import dns.rdataset
import dns.rdatatype
import dns.zone
import pytest

from certbot_dane_tlsa.dnsname import Name, from_dnspython, to_dnspython
from certbot_dane_tlsa.records import TlsaParams, TlsaRecord
from certbot_dane_tlsa.zonefile.editor import ZoneEdit

RRsets = dict[tuple[Name, int], tuple[int, frozenset[object]]]

_TLSA_LINE = re.compile(rb"^\S+\t(?:\S+\t)?IN\tTLSA\t\d \d \d [0-9a-f]+\r?\n?$")


@contextmanager
def _cwd(path: Path) -> Iterator[None]:
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def parse_zone(path: Path, origin: Name, drop: re.Pattern[str] | None = None) -> RRsets:
    """Every RRset of the zone as dnspython reads it ($INCLUDE paths relative to the zone)."""
    text = path.read_bytes().decode("utf-8", "surrogateescape")
    if drop is not None:
        text = "".join(line for line in text.splitlines(True) if not drop.search(line))
    with _cwd(path.parent):
        zone = dns.zone.from_text(
            text, to_dnspython(origin), relativize=False, check_origin=True, allow_include=True
        )
    out: RRsets = {}
    for name, node in zone.nodes.items():
        for rds in node.rdatasets:
            out[(from_dnspython(name), rds.rdtype)] = (rds.ttl, frozenset(rds))
    return out


def tlsa_rdata(rec: TlsaRecord) -> object:
    import dns.rdata

    return dns.rdata.from_text("IN", "TLSA", rec.to_text())


def expected_rrsets(
    before: RRsets,
    managed: Mapping[Name, set[TlsaParams]],
    desired: Mapping[Name, set[TlsaRecord]],
    new_serial: int | None,
    origin: Name,
) -> RRsets:
    out = dict(before)
    for owner, params in managed.items():
        key = (owner, int(dns.rdatatype.TLSA))
        ttl, old = out.get(key, (0, frozenset()))
        kept = {
            rd
            for rd in old
            if (rd.usage, rd.selector, rd.mtype)
            not in {(p.usage, p.selector, p.mtype) for p in params}  # type: ignore[attr-defined]
        }
        rdatas = frozenset(kept | {tlsa_rdata(r) for r in desired.get(owner, set())})
        if rdatas:
            out[key] = (ttl, rdatas)
        else:
            out.pop(key, None)
    if new_serial is not None:
        key = (origin, int(dns.rdatatype.SOA))
        ttl, soas = out[key]
        (soa,) = soas
        out[key] = (ttl, frozenset({soa.replace(serial=new_serial)}))  # type: ignore[attr-defined]
    return out


def without_tlsa_ttls(rrsets: RRsets, owners: set[Name]) -> RRsets:
    return {
        key: (0 if key[0] in owners and key[1] == dns.rdatatype.TLSA else ttl, rds)
        for key, (ttl, rds) in rrsets.items()
    }


def named_checkzone(path: Path, origin: Name) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["named-checkzone", "-q", origin.to_text(), str(path)],
        cwd=path.parent,
        capture_output=True,
        text=True,
        check=False,
    )


def apply_splices(original: bytes, edit: ZoneEdit) -> bytes:
    out = []
    pos = 0
    for sp in edit.splices:
        assert sp.start >= pos
        out.append(original[pos : sp.start])
        out.append(sp.text)
        pos = sp.end
    out.append(original[pos:])
    return b"".join(out)


def check_splices_are_minimal(original: bytes, edit: ZoneEdit) -> None:
    """Each splice replaces the serial digits, or whole TLSA lines, or adds an owner name to
    a blank-owner line; nothing else may change."""
    for sp in edit.splices:
        old = original[sp.start : sp.end]
        if edit.old_serial is not None and old == str(edit.old_serial).encode():
            assert sp.text == str(edit.new_serial).encode()
            continue
        if old:
            low = old.lower()
            assert b"tlsa" in low or b"type52" in low, old
            assert sp.start == 0 or original[sp.start - 1 : sp.start] == b"\n"
        owner_fix = sp.start == sp.end and b"\n" not in sp.text
        if sp.text and owner_fix and original[sp.start : sp.start + 1] in (b" ", b"\t"):
            assert re.fullmatch(rb"[^\s;]+", sp.text), sp.text
            continue
        for line in sp.text.splitlines(True):
            if line in (b"\n", b"\r\n"):
                continue
            assert _TLSA_LINE.match(line), line


def written(edit: ZoneEdit) -> bytes:
    buf = io.BytesIO()
    edit.write_to(buf)
    return buf.getvalue()


class ZoneChecks:
    """The helpers above, handed to tests as a fixture (test modules do not import conftest)."""

    parse_zone = staticmethod(parse_zone)
    tlsa_rdata = staticmethod(tlsa_rdata)
    expected_rrsets = staticmethod(expected_rrsets)
    without_tlsa_ttls = staticmethod(without_tlsa_ttls)
    named_checkzone = staticmethod(named_checkzone)
    apply_splices = staticmethod(apply_splices)
    check_splices_are_minimal = staticmethod(check_splices_are_minimal)
    written = staticmethod(written)


@pytest.fixture(scope="session")
def zc() -> type[ZoneChecks]:
    return ZoneChecks


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "corpus" / "zones"
