"""Every syntax case of the corpus, edited and then checked three ways: dnspython reads the
expected records, named-checkzone accepts the result, and no byte outside the planned splices
moved. The fast scanner must also plan exactly what the line-by-line scanner plans."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dns.name
import dns.rdatatype
import pytest

from certbot_dane_tlsa import dnsname, lite_dataclasses
from certbot_dane_tlsa.dnsname import Name
from certbot_dane_tlsa.records import TlsaParams, TlsaRecord
from certbot_dane_tlsa.zonefile import ZoneEdit, plan_zone_edit, scanner

ORIGIN = dnsname.from_text("example.com.")


@contextmanager
def small_chunks(size: int = 23) -> Iterator[None]:
    old = scanner.CHUNK_SIZE
    scanner.CHUNK_SIZE = size
    try:
        yield
    finally:
        scanner.CHUNK_SIZE = old


NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
OLD = TlsaRecord.from_text("3 1 1 cba06b5736faf67e54b07b561eae94395e774c517a7d910a54369e1263ccfbd4")
NEW = TlsaRecord.from_text("3 1 1 11507a0e2f5e69d5dfa40a62a1bd7b6ee57e6bcd85c67c9b8431b36fff21c437")
OTHER = TlsaRecord.from_text(
    "2 1 1 d9298a10d1b0735837dc4bd85dac641b0f3cef27a47e5d53a54f2f3f5b2fcffa"
)
P311 = TlsaParams(3, 1, 1)
NEW_HEX = NEW.data.hex()


def name(text: str) -> Name:
    return dnsname.from_text(text, ORIGIN)


@dataclass
class Case:
    file: str
    owners: tuple[str, ...] = ("_25._tcp.mail",)
    desired: tuple[TlsaRecord, ...] = (NEW,)
    changed: bool = True
    serial: str = "auto"
    new_serial: int | None = 2024050100
    ttl: int | None = None
    contains: tuple[bytes, ...] = ()
    ttls: dict[str, int] = field(default_factory=dict)  # owner -> effective TTL after the edit
    drop: str | None = None  # lines dnspython cannot read (its $GENERATE takes one-word data)
    ttl_fixes: int = 0  # records given their old TTL (no $TTL: an omitted TTL is inherited)


CASES = {
    "origin_change": Case(
        "origin_change.zone",
        contains=(b"$ORIGIN mail.example.com.\n_25._tcp.mail.example.com.\tIN\tTLSA\t3 1 1 ",),
    ),
    "blank_owner_neighbour": Case(
        "blank_owner_neighbour.zone",
        contains=(f"_25._tcp.mail\tIN\tTLSA\t3 1 1 {NEW_HEX}\n\t\tIN\tTLSA\t2 1 1 ".encode(),),
    ),
    "blank_owner_neighbour_removed": Case(
        "blank_owner_neighbour.zone",
        desired=(),
        contains=(b"192.0.2.25\n_25._tcp.mail\t\tIN\tTLSA\t2 1 1 ",),
    ),
    "blank_owner_managed": Case(
        "blank_owner_managed.zone",
        contains=(f"2fcffa\n_25._tcp.mail\tIN\tTLSA\t3 1 1 {NEW_HEX}\n\t\tIN\tTXT".encode(),),
    ),
    "remove_all_managed": Case(
        "remove_all.zone",
        desired=(),
        contains=(b"192.0.2.25\n_25._tcp.mail\tIN\tTLSA\t2 1 1 ",),
    ),
    "at_apex": Case(
        "at_apex.zone",
        owners=("_25._tcp",),
        contains=(f"10 mail\n_25._tcp\tIN\tTLSA\t3 1 1 {NEW_HEX}\nns1\t".encode(),),
    ),
    "absolute_names": Case("absolute_names.zone"),
    "ttl_class_order": Case(
        "ttl_class_order.zone",
        contains=(b"_25._tcp.mail\t300\tIN\tTLSA",),
        ttls={"_25._tcp.mail": 300},
    ),
    "ttl_units": Case(
        "ttl_units.zone",
        contains=(b"_25._tcp.mail\t1h30m\tIN\tTLSA",),
        ttls={"_25._tcp.mail": 5400},
    ),
    "explicit_ttl": Case(
        "wrong_record.zone",
        ttl=600,
        contains=(b"_25._tcp.mail\t600\tIN\tTLSA",),
        ttls={"_25._tcp.mail": 600},
    ),
    "soa_one_line": Case(
        "soa_one_line.zone", contains=(b"hostmaster.example.com. 2024050100 7200",)
    ),
    "soa_serial_own_line": Case("soa_serial_own_line.zone", new_serial=43, contains=(b"(\n 43\n",)),
    "soa_comments_inside_unixtime": Case(
        "soa_comments_inside.zone",
        new_serial=int(NOW.timestamp()),
        contains=(f"192.0.2.25\n_25._tcp.mail\tIN\tTLSA\t3 1 1 {NEW_HEX}\n".encode(),),
    ),
    "quoted_strings": Case("quoted_strings.zone"),
    "split_hex_wrong": Case("split_hex.zone"),
    "split_hex_right": Case("split_hex_right.zone", changed=False, new_serial=None),
    "generic_right": Case("generic_right.zone", changed=False, new_serial=None),
    "generic_wrong": Case("generic_wrong.zone"),
    "crlf_replace": Case("crlf.zone", contains=(f"{NEW_HEX}\r\nwww".encode(),)),
    "crlf_insert": Case(
        "crlf_insert.zone",
        contains=(f"192.0.2.25\r\n_25._tcp.mail\tIN\tTLSA\t3 1 1 {NEW_HEX}\r\nwww".encode(),),
    ),
    "no_final_newline": Case("no_final_newline.zone"),
    "uppercase": Case("uppercase.zone"),
    "escaped_names": Case("escaped_names.zone"),
    "include": Case("include_main.zone"),
    "generate": Case("generate.zone", drop=r"^\$GENERATE .* TLSA "),
    "already_right": Case("already_right.zone", changed=False, new_serial=None),
    "wrong_record": Case("wrong_record.zone"),
    "serial_keep": Case("wrong_record.zone", serial="keep", new_serial=None),
    "serial_increment": Case("wrong_record.zone", serial="increment", new_serial=2024010102),
    "extra_params_kept": Case("extra_params_kept.zone"),
    "no_tlsa_with_anchor": Case(
        "no_tlsa_anchor.zone",
        contains=(f'"mail host"\n_25._tcp.mail\tIN\tTLSA\t3 1 1 {NEW_HEX}\n\nother'.encode(),),
    ),
    "no_tlsa_without_anchor": Case(
        "no_tlsa_no_anchor.zone",
        owners=("_25._tcp.smtp",),
        contains=(f"192.0.2.90\n_25._tcp.smtp\tIN\tTLSA\t3 1 1 {NEW_HEX}".encode(),),
    ),
    "no_ttl_directive": Case(
        "no_ttl_directive.zone",
        new_serial=8,
        contains=(b"_25._tcp.mail\t120\tIN\tTLSA",),
        ttls={"_25._tcp.mail": 120},
    ),
    "no_ttl_insert_with_ttl": Case(
        "no_ttl_insert.zone",
        ttl=300,
        new_serial=8,
        contains=(f"_25._tcp.mail\t300\tIN\tTLSA\t3 1 1 {NEW_HEX}\nwww 3600 IN A".encode(),),
        ttls={"_25._tcp.mail": 300},
        ttl_fixes=1,
    ),
    "no_ttl_insert_inherited": Case(
        "no_ttl_insert.zone",
        new_serial=8,
        contains=(f"_25._tcp.mail\t3600\tIN\tTLSA\t3 1 1 {NEW_HEX}\nwww IN A".encode(),),
        ttls={"_25._tcp.mail": 3600},
    ),
    "no_ttl_remove_explicit": Case(
        "no_ttl_directive.zone",
        desired=(),
        new_serial=8,
        contains=(b"192.0.2.25\nwww 120 A 192.0.2.80",),
        ttl_fixes=1,
    ),
    "no_ttl_blank_owner_removed": Case(
        "no_ttl_blank_owner.zone",
        desired=(),
        new_serial=8,
        contains=(b'192.0.2.25\n_25._tcp.mail\t120\t\tIN\tTXT\t"kept',),
        ttl_fixes=1,
    ),
    "no_ttl_blank_owner_ttl": Case(
        "no_ttl_blank_owner.zone",
        ttl=300,
        new_serial=8,
        contains=(f"_25._tcp.mail\t300\tIN\tTLSA\t3 1 1 {NEW_HEX}\n\t120\t\tIN\tTXT".encode(),),
        ttls={"_25._tcp.mail": 300},
        ttl_fixes=1,
    ),
    "two_ports": Case(
        "two_ports.zone",
        owners=("_25._tcp.mail", "_465._tcp.mail"),
        contains=(b"2001:db8::25\n_25._tcp.mail\tIN\tTLSA\t3 1 1 ",),
    ),
}


_TTL_FIX = re.compile(rb"[ \t]\d+\Z")


def split_ttl_fixes(original: bytes, edit: ZoneEdit) -> tuple[ZoneEdit, list[tuple[int, int]]]:
    """Take the TTLs written into neighbour records out of the splices: (the edit without
    them, [(offset, ttl)]). Each must sit right after an owner field: after the first word of
    a line, or at the start of a line with a blank owner (after an owner name added there)."""
    rest = []
    fixes = []
    for sp in edit.splices:
        m = _TTL_FIX.search(sp.text) if sp.start == sp.end else None
        if m is not None:
            line_start = original.rfind(b"\n", 0, sp.start) + 1
            owner = original[line_start : sp.start]
            assert original[sp.start : sp.start + 1] in (b" ", b"\t"), sp
            assert not re.search(rb"\s", owner), sp
            fixes.append((sp.start, int(m.group()[1:])))
            sp = lite_dataclasses.replace(sp, text=sp.text[: m.start()])
            if not sp.text:
                continue
        rest.append(sp)
    return lite_dataclasses.replace(edit, splices=rest), fixes


@pytest.mark.parametrize("case_id", sorted(CASES))
def test_corpus_case(case_id: str, corpus_dir: Path, tmp_path: Path, zc: Any) -> None:
    case = CASES[case_id]
    for extra in corpus_dir.glob("*.inc"):
        shutil.copy(extra, tmp_path / extra.name)
    zone = tmp_path / case.file
    shutil.copy(corpus_dir / case.file, zone)
    original = zone.read_bytes()
    assert zc.named_checkzone(zone, ORIGIN).returncode == 0, "corpus file itself must load"

    owners = [name(o) for o in case.owners]
    managed = {o: {P311} for o in owners}
    desired = {o: set(case.desired) for o in owners}
    kwargs = {"serial": case.serial, "ttl": case.ttl, "now": NOW}
    edit = plan_zone_edit(zone, ORIGIN, desired, managed, **kwargs)  # type: ignore[arg-type]
    full = plan_zone_edit(zone, ORIGIN, desired, managed, full_scan=True, **kwargs)  # type: ignore[arg-type]
    assert edit.splices == full.splices, "fast scan and full tokenization disagree"
    assert edit.changes == full.changes and edit.found == full.found
    with small_chunks():  # records and parentheses that straddle read chunks
        assert plan_zone_edit(zone, ORIGIN, desired, managed, **kwargs).splices == edit.splices  # type: ignore[arg-type]

    assert edit.changed is case.changed
    assert edit.new_serial == case.new_serial
    if not case.changed:
        assert edit.splices == [] and edit.diff() == ""
        assert zc.written(edit) == original
        return

    result = zc.written(edit)
    assert result == zc.apply_splices(original, edit)
    without_fixes, fixes = split_ttl_fixes(original, edit)
    assert len(fixes) == case.ttl_fixes, fixes
    zc.check_splices_are_minimal(original, without_fixes)
    for text in case.contains:
        assert text in result, (text, result.decode(errors="replace"))

    out = tmp_path / ("edited-" + case.file)
    out.write_bytes(result)
    check = zc.named_checkzone(out, ORIGIN)
    assert check.returncode == 0, check.stdout + check.stderr

    drop = re.compile(case.drop) if case.drop else None
    before = zc.parse_zone(zone, ORIGIN, drop)
    after = zc.parse_zone(out, ORIGIN, drop)
    expected = zc.expected_rrsets(before, managed, desired, edit.new_serial, ORIGIN)
    assert zc.without_tlsa_ttls(after, set(owners)) == zc.without_tlsa_ttls(expected, set(owners))
    for change in edit.changes:
        key = (change.owner, int(dns.rdatatype.TLSA))
        if key in after:
            assert after[key][0] == change.ttl
    for owner_text, ttl in case.ttls.items():
        (change,) = [c for c in edit.changes if c.owner == name(owner_text)]
        assert change.ttl == ttl

    diff = edit.diff()
    assert diff.startswith(f"--- {zone}\n+++ {zone}\n@@ ")
    if edit.new_serial is not None:
        assert "+" in diff and str(edit.new_serial) in diff


def test_found_lists_every_tlsa_at_managed_owners(corpus_dir: Path) -> None:
    zone = corpus_dir / "include_main.zone"
    owner = name("_25._tcp.mail")
    edit = plan_zone_edit(zone, ORIGIN, {owner: {NEW}}, {owner: {P311}}, now=NOW)
    # the 2 1 1 record lives in the included file; it is reported but never touched
    assert edit.found[owner] == {OLD, OTHER}
    assert edit.changes[0].before == {OLD}
