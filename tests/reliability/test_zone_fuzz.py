"""Fuzzing the zone reader/writer with hypothesis.

(a) Whatever bytes a zone file holds, planning an edit either works or raises one of the
tool's own errors (ZoneSyntaxError, ZoneError, ...), which the command line turns into one
clear line; anything else would be a traceback in certbot's log and a lost renewal hook.

(b) Valid zones built from the master-file features that tests/unit/test_zone_properties.py
does not generate: $INCLUDE (with and without an origin, quoted file names), $GENERATE,
escaped owner names (including an escaped spelling of a managed owner), TTL units such as
1w2d, zones without $TTL (where a record that omits its TTL takes the previous one's),
upper-case directives, CRLF, TYPE52 generic data and foreign TLSA parameters left in an
included file. The oracles are dnspython's zone parser (the record set
after the edit is the one before with exactly the managed changes) and named-checkzone.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dns.rdata
import dns.rdatatype
import dns.zone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from certbot_dane_tlsa import dnsname
from certbot_dane_tlsa.dnsname import Name, from_dnspython, to_dnspython
from certbot_dane_tlsa.errors import DaneError
from certbot_dane_tlsa.records import TlsaParams, TlsaRecord
from certbot_dane_tlsa.zonefile import plan_zone_edit

ORIGIN = dnsname.from_text("example.com.")
NOW = datetime(2024, 5, 1, tzinfo=UTC)
P311 = TlsaParams(3, 1, 1)
MANAGED = [
    dnsname.from_text("_25._tcp.mail.example.com."),
    dnsname.from_text("_443._tcp.www.example.com."),
]
POOL = [TlsaRecord(3, 1, 1, bytes([n]) * 32) for n in (1, 2, 3)]
FOREIGN = TlsaRecord(2, 1, 1, bytes([9]) * 32)

RRsets = dict[tuple[Name, int], tuple[int, frozenset[Any]]]


@contextmanager
def scratch() -> Iterator[Path]:
    # One directory per example: hypothesis runs many examples inside one test call, so
    # pytest's tmp_path would be shared between them.
    with tempfile.TemporaryDirectory(prefix="zone-fuzz-") as d:
        yield Path(d)


def plan(path: Path, desired: dict[Name, set[TlsaRecord]] | None = None) -> Any:
    desired = desired if desired is not None else {m: {POOL[0]} for m in MANAGED}
    return plan_zone_edit(path, ORIGIN, desired, {m: {P311} for m in MANAGED}, now=NOW)


# --- (a) arbitrary input ---------------------------------------------------------------------

TOKENS = [
    "$ORIGIN", "$TTL", "$INCLUDE", "$GENERATE", "$include", "@", "(", ")", ";", '"', "\\", "\\#",
    "IN", "CH", "TLSA", "tlsa", "TYPE52", "SOA", "A", "TXT", "CNAME", "3", "1", "0", "2", "35",
    "255", "4294967296", "1-3", "1-99999", "$", "${0,3,d}", "1h", "1w2d", "-1", "ns1", "mail",
    "_25._tcp.mail", "_25._tcp.mail.example.com.", "_443._tcp.www", "example.com.", "..", "a\\.b",
    "\\109ail", "\\999", "inc.db", "missing.db", '"inc.db"', "0101" * 8, "zz", "\x00", "é",
    " ", " ", "\t", "\n", "\n", "\r\n", "\r",
]  # fmt: skip
HEADER = "$TTL 300\n@ IN SOA ns1 host ( 1 2 3 4 5 )\n IN NS ns1\n"


def token_soup() -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(TOKENS), max_size=80).map(" ".join)


def check_only_dane_errors(data: bytes) -> None:
    with scratch() as d:
        (d / "inc.db").write_bytes(b"x IN A 192.0.2.1\n_25._tcp.mail IN TLSA 2 1 1 " + b"ab" * 32)
        zone = d / "db"
        zone.write_bytes(data)
        try:
            edit = plan(zone)
            edit.diff()
            with open(os.devnull, "wb") as sink:
                edit.write_to(sink)
        except DaneError:
            pass


FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=3000))
def test_arbitrary_bytes_only_raise_dane_errors(data: bytes) -> None:
    check_only_dane_errors(data)


@FUZZ
@given(st.one_of(token_soup(), st.text(max_size=400)), st.booleans(), st.booleans())
def test_zone_like_text_only_raises_dane_errors(text: str, header: bool, crlf: bool) -> None:
    if header:
        text = HEADER + text
    if crlf:
        text = text.replace("\n", "\r\n")
    check_only_dane_errors(text.encode("utf-8", "surrogatepass"))


SEED_ZONE = (
    b"$TTL 1h\n@ IN SOA ns1 hostmaster ( 2024010101 ; serial\n 3600 600 86400 300 )\n"
    b" IN NS ns1\nns1 IN A 192.0.2.1\n$ORIGIN mail.example.com.\n@ IN A 192.0.2.2\n"
    b"_25._tcp 300 IN TLSA 3 1 1 ( " + b"01" * 16 + b"\n " + b"01" * 16 + b" )\n"
    b'  IN TXT "a;b" "(c"\n$ORIGIN example.com.\n$INCLUDE inc.db\n'
    b"$GENERATE 1-3 g$ A 10.0.0.$\n_443._tcp.www IN TYPE52 \\# 35 030101" + b"02" * 32 + b"\n"
)


@FUZZ
@given(
    st.lists(
        st.tuples(st.integers(0, len(SEED_ZONE)), st.integers(0, 4), st.binary(max_size=4)),
        min_size=1,
        max_size=6,
    )
)
def test_mutated_valid_zone_only_raises_dane_errors(
    mutations: list[tuple[int, int, bytes]],
) -> None:
    # Small cuts and insertions into a valid zone reach the deep paths (SOA, TLSA data,
    # directives, parentheses) that random bytes rarely get to.
    data = SEED_ZONE
    for pos, cut, insert in mutations:
        data = data[:pos] + insert + data[pos + cut :]
    check_only_dane_errors(data)


# --- (b) valid zones with more syntax ---------------------------------------------------------


def escaped(label: str) -> str:
    """The label with every letter written as a \\DDD escape."""
    return "".join(f"\\{ord(c):03d}" if c.isalpha() else c for c in label)


def managed_owner_text(owner: Name, style: int) -> str:
    rel = owner.relativize(ORIGIN).to_text()
    if style == 0:
        return rel
    if style == 1:
        return owner.to_text().upper()
    labels = rel.split(".")
    labels[-1] = escaped(labels[-1])
    return ".".join(labels)


def tlsa_data(rec: TlsaRecord, generic: bool) -> str:
    if generic:
        return f"\\# 35 {rec.usage:02x}{rec.selector:02x}{rec.mtype:02x}{rec.data.hex()}"
    hexdata = rec.data.hex()
    return f"{rec.usage} {rec.selector} {rec.mtype} ( {hexdata[:30]}\n\t{hexdata[30:]} )"


@st.composite
def zone_files(draw: Any, directory: Path) -> tuple[str, dict[str, str]]:
    """(main file text, {included file name: text}); absolute $INCLUDE paths, so dnspython,
    named-checkzone and the editor all find the same file."""
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    ttl_directive = draw(st.booleans())
    lines: list[str] = []
    if ttl_directive:
        lines.append(draw(st.sampled_from(["$TTL 1h", "$ttl 1w2d", "$TTL 300", "$TTL 1H30M"])))
    soa_ttl = "" if ttl_directive else "3600 "
    lines.append(f"@ {soa_ttl}IN SOA ns1 hostmaster ( 7 ; serial{eol} 3600 600 86400 300 )")
    # Without $TTL a record that omits its TTL takes the one of the record before it, so
    # the editor must not change what precedes such a record without keeping its TTL.
    ttls = ["", "300 ", "2h ", "1W "] if ttl_directive else ["", "", "300 ", "2h "]
    for line in (" IN NS ns1", "ns1 IN A 192.0.2.1", "mail IN A 192.0.2.2", "www IN A 192.0.2.3"):
        owner, rest = line.split(" ", 1)
        lines.append(f"{owner} {draw(st.sampled_from(ttls))}{rest}")
    includes: dict[str, str] = {}
    after_include = False
    for n in range(draw(st.integers(0, 10))):
        kind = draw(st.integers(0, 7))
        if kind == 0:
            name = f"inc{n}.db"
            # Explicit TTLs here: a first record that took its TTL from the main file could
            # not be kept from changing by an edit in the main file (the editor refuses that).
            body = [
                f"x{n} 300 IN A 192.0.2.{n + 10}",
                # No blank owners here: named-checkzone rejects an inherited owner after the
                # origin an $INCLUDE sets, even past an explicit one.
                f'x{n} 300 IN TXT "inc;{n}" "(paren"',
            ]
            if draw(st.booleans()):
                # Foreign parameters at a managed owner may live in an included file.
                owner = draw(st.sampled_from(MANAGED)).to_text()
                body.append(f"{owner} 300 IN TLSA {tlsa_data(FOREIGN, draw(st.booleans()))}")
            includes[name] = eol.join(body) + eol
            path = str(directory / name)
            origin = draw(st.sampled_from(["", " sub.example.com.", " example.com."]))
            quoted = draw(st.booleans())
            word = draw(st.sampled_from(["$INCLUDE", "$include"]))
            lines.append(f'{word} "{path}"{origin}' if quoted else f"{word} {path}{origin}")
            after_include = True
            continue
        # Without $TTL, BIND gives a record right after an $INCLUDE that omits its TTL the
        # TTL of the included file's last record, and dnspython the one from before the
        # $INCLUDE: the oracle cannot judge such a record, and the editor refuses to edit in
        # front of it. So it states a TTL.
        ttl_choices = [t for t in ttls if t] if after_include and not ttl_directive else ttls
        if kind == 1:
            count = draw(st.integers(1, 20))
            gen_ttl = draw(st.sampled_from(["600 "] if "" not in ttl_choices else ["600 ", ""]))
            lines.append(f"$GENERATE 1-{count} gen{n}-$ {gen_ttl}IN A 10.{n}.0.$")
            after_include = False  # $GENERATE sets no owner for a following blank line
            lines.append(f"gen{n}-end IN A 10.{n}.1.1")
            continue
        ttl = draw(st.sampled_from(ttl_choices))
        if kind <= 4:
            owner = draw(st.sampled_from(MANAGED))
            owner_text = managed_owner_text(owner, draw(st.integers(0, 2)))
            rec = draw(st.sampled_from([*POOL, FOREIGN]))
            data = tlsa_data(rec, draw(st.booleans()))
            rtype = "TYPE52" if data.startswith("\\#") else draw(st.sampled_from(["TLSA", "tlsa"]))
            lines.append(f"{owner_text}\t{ttl}IN\t{rtype}\t{data}")
            if not after_include and draw(st.booleans()):
                rec2 = draw(st.sampled_from(POOL))
                lines.append(f"\t{ttl}IN TLSA {tlsa_data(rec2, False)} ; blank owner")
        elif kind == 5:
            owner_text = draw(st.sampled_from(["a\\.b", "\\040sp", 'q\\"t', "\\065BC"]))
            lines.append(f'{owner_text} {ttl}IN TXT "v=x; (y)" ; escaped owner')
        elif kind == 6:
            lines.append(f"$ORIGIN {draw(st.sampled_from(['sub.example.com.', 'example.com.']))}")
            lines.append(f"o{n} {ttl}IN A 192.0.2.{n + 100}")
            lines.append("$ORIGIN example.com.")
        else:
            lines.append(draw(st.sampled_from(["", "; comment ( with paren", "  ; indented"])))
            continue
        after_include = False
    # Always a final newline: named rejects "$INCLUDE file origin" as the unterminated last
    # line ("extra input text"); the unit corpus covers files without one.
    text = eol.join(lines) + eol
    return text, includes


def parse(path: Path) -> RRsets:
    zone = dns.zone.from_text(
        path.read_bytes().decode(), to_dnspython(ORIGIN), relativize=False, allow_include=True
    )
    out: RRsets = {}
    for name, node in zone.nodes.items():
        for rds in node.rdatasets:
            out[(from_dnspython(name), rds.rdtype)] = (rds.ttl, frozenset(rds))
    return out


def expected_after(
    before: RRsets, desired: dict[Name, set[TlsaRecord]], new_serial: int | None
) -> RRsets:
    out = dict(before)
    for owner in MANAGED:
        key = (owner, int(dns.rdatatype.TLSA))
        ttl, old = out.get(key, (0, frozenset()))
        kept = {rd for rd in old if (rd.usage, rd.selector, rd.mtype) != (3, 1, 1)}
        new = {dns.rdata.from_text("IN", "TLSA", r.to_text()) for r in desired[owner]}
        if kept | new:
            out[key] = (ttl, frozenset(kept | new))
        else:
            out.pop(key, None)
    if new_serial is not None:
        key = (ORIGIN, int(dns.rdatatype.SOA))
        ttl, soas = out[key]
        (soa,) = soas
        out[key] = (ttl, frozenset({soa.replace(serial=new_serial)}))
    return out


def tlsa_ttls_dropped(rrsets: RRsets) -> RRsets:
    # BIND keeps the first record's TTL for an RRset and dnspython the smallest; the TLSA
    # TTL is checked by the corpus tests, here only the records matter.
    return {k: (0 if k[1] == dns.rdatatype.TLSA else ttl, rds) for k, (ttl, rds) in rrsets.items()}


def checkzone(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["named-checkzone", ORIGIN.to_text(), str(path)],
        capture_output=True,
        text=True,
        check=False,
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    want25=st.sets(st.sampled_from(POOL), max_size=2),
    want443=st.sets(st.sampled_from(POOL), max_size=2),
)
def test_generated_zones_change_exactly_the_managed_records(
    data: st.DataObject, want25: set[TlsaRecord], want443: set[TlsaRecord]
) -> None:
    with scratch() as d:
        text, includes = data.draw(zone_files(d))
        for name, body in includes.items():
            (d / name).write_text(body, newline="")
        zone = d / "db.example.com"
        zone.write_bytes(text.encode())
        original = zone.read_bytes()
        pre = checkzone(zone)
        assert pre.returncode == 0, f"generator made a bad zone: {pre.stdout}\n{text}"
        before = parse(zone)

        desired = {MANAGED[0]: want25, MANAGED[1]: want443}
        edit = plan(zone, desired)
        # Rewrite through the editor's own writer, as write_candidate does.
        new_path = d / "db.new"
        with new_path.open("wb") as out:
            edit.write_to(out)
        new_path.replace(zone)
        after = parse(zone)

        assert tlsa_ttls_dropped(after) == tlsa_ttls_dropped(
            expected_after(before, desired, edit.new_serial)
        ), text
        assert edit.changed == (after != before)
        post = checkzone(zone)
        assert post.returncode == 0, f"{post.stdout}\n--- before ---\n{text}"
        for name, body in includes.items():
            assert (d / name).read_bytes() == body.encode()
        if not edit.changed:
            assert zone.read_bytes() == original


NO_TTL_ZONE = """\
@ 3600 IN SOA ns1 hostmaster 7 3600 600 86400 300
 IN NS ns1
ns1 IN A 192.0.2.1
mail IN A 192.0.2.2
www IN A 192.0.2.3
"""


def test_inserted_ttl_does_not_leak_into_following_records_without_ttl() -> None:
    with scratch() as d:
        zone = d / "db.example.com"
        zone.write_text(NO_TTL_ZONE)
        before = parse(zone)
        owner = MANAGED[0]
        edit = plan_zone_edit(zone, ORIGIN, {owner: {POOL[0]}}, {owner: {P311}}, ttl=300, now=NOW)
        new_path = d / "db.new"
        with new_path.open("wb") as out:
            edit.write_to(out)
        new_path.replace(zone)
        after = parse(zone)
        www = (dnsname.from_text("www.example.com."), int(dns.rdatatype.A))
        assert before[www][0] == 3600
        assert after[www][0] == 3600, f"www A TTL became {after[www][0]}"
