"""Refusals and edge cases of the zone editor: bad input must give the right error and leave
the file untouched; diff and write must agree with the plan."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from certbot_dane_tlsa import dnsname
from certbot_dane_tlsa.errors import SettingsError, ZoneError, ZoneSyntaxError
from certbot_dane_tlsa.records import TlsaParams, TlsaRecord
from certbot_dane_tlsa.zonefile import plan_zone_edit, read_tlsa

ORIGIN = dnsname.from_text("example.com.")
OWNER = dnsname.from_text("_25._tcp.mail.example.com.")
NOW = datetime(2024, 5, 1, tzinfo=UTC)
NEW = TlsaRecord(3, 1, 1, bytes(range(32)))
OLD_HEX = "ab" * 32
HEAD = """$TTL 300
@ IN SOA ns1.example.com. hostmaster.example.com. ( 2024010101 ; Serial
   7200 3600 1209600 300 )
  IN NS ns1
ns1 IN A 192.0.2.1
mail IN A 192.0.2.25
"""


def plan(path: Path, **kwargs: Any) -> Any:
    return plan_zone_edit(
        path, ORIGIN, {OWNER: {NEW}}, {OWNER: {TlsaParams(3, 1, 1)}}, now=NOW, **kwargs
    )


def zone(tmp_path: Path, text: str, name: str = "db.example.com") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "error", "needle"),
    [
        ("$TTL 300\n@ IN NS ns1\nns1 IN A 192.0.2.1\n", ZoneError, "no SOA"),
        (HEAD + "@ IN SOA a. b. 1 2 3 4 5\n", ZoneError, "second SOA"),
        (HEAD + "sub IN SOA a. b. 1 2 3 4 5\n", ZoneError, "not at the zone origin"),
        (HEAD + 'txt IN TXT ( "a"\nwww IN A 192.0.2.80\n', ZoneSyntaxError, ":7: unbalanced"),
        (HEAD + 'txt IN TXT "a" )\n', ZoneSyntaxError, ":7: unbalanced"),
        (HEAD + 'txt IN TXT "open ; not closed\n', ZoneSyntaxError, ":7: unterminated quoted"),
        (HEAD + f"_25._tcp.mail IN TLSA 3 1 1 {OLD_HEX}a\n", ZoneError, ":7: TLSA record data"),
        (HEAD + "$BOGUS 1\n", ZoneSyntaxError, ":7: unknown directive"),
        # Found by atheris: a name the OS refuses (ENAMETOOLONG) ended in a traceback.
        (HEAD + "$INCLUDE " + "x" * 300 + "\n", ZoneError, "cannot be read: File name too long"),
        (HEAD + "$INCLUDE /\n", ZoneError, ":7: $INCLUDE file / is not a regular file"),
        (HEAD + "$INCLUDE nowhere\n", ZoneError, "nowhere does not exist"),
        (HEAD.replace("2024010101", "20x4"), ZoneSyntaxError, ":2: SOA serial"),
    ],
)
def test_bad_input_is_refused_and_file_untouched(
    tmp_path: Path, text: str, error: type[Exception], needle: str
) -> None:
    path = zone(tmp_path, text)
    before = path.read_bytes(), path.stat().st_mtime_ns
    with pytest.raises(error) as info:
        plan(path)
    message = str(info.value)
    assert needle in message, message
    assert str(path) in message and "\n" not in message
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_unterminated_quote_far_from_anything_managed(tmp_path: Path) -> None:
    # The fast scanner never tokenizes this line for its content, yet must notice the quote.
    body = "".join(f"h{i} IN A 192.0.2.{i % 250}\n" for i in range(2000))
    path = zone(tmp_path, HEAD + body + 'bad IN TXT "x\n' + body)
    with pytest.raises(ZoneSyntaxError) as info:
        plan(path)
    assert info.value.line == 2007


def test_owner_outside_zone(tmp_path: Path) -> None:
    path = zone(tmp_path, HEAD)
    outside = dnsname.from_text("_25._tcp.mail.example.net.")
    with pytest.raises(ZoneError, match="outside the zone"):
        plan_zone_edit(path, ORIGIN, {outside: {NEW}}, {outside: {TlsaParams(3, 1, 1)}})
    with pytest.raises(ZoneError, match="outside the zone"):
        read_tlsa(path, ORIGIN, [outside])


def test_unmanaged_params_in_desired_are_refused(tmp_path: Path) -> None:
    path = zone(tmp_path, HEAD)
    with pytest.raises(ZoneError, match="not managed"):
        plan_zone_edit(path, ORIGIN, {OWNER: {NEW}}, {OWNER: {TlsaParams(2, 1, 1)}})


def test_unknown_serial_method(tmp_path: Path) -> None:
    with pytest.raises(SettingsError):
        plan(zone(tmp_path, HEAD), serial="weekly")


def test_managed_record_in_include_is_refused(tmp_path: Path, corpus_dir: Path) -> None:
    for f in corpus_dir.glob("include_*"):
        shutil.copy(f, tmp_path / f.name)
    sub = dnsname.from_text("_25._tcp.sub.example.com.")
    with pytest.raises(ZoneError) as info:
        plan_zone_edit(
            tmp_path / "include_main.zone", ORIGIN, {sub: {NEW}}, {sub: {TlsaParams(3, 1, 1)}}
        )
    assert f"{tmp_path / 'include_sub.inc'}:3:" in str(info.value)
    # reading it for a check is fine
    found = read_tlsa(tmp_path / "include_main.zone", ORIGIN, [sub])
    assert {r.params for r in found[sub]} == {TlsaParams(3, 1, 1)}


def test_generate_making_managed_tlsa_is_refused(corpus_dir: Path) -> None:
    owner = dnsname.from_text("_25._tcp.gen.example.com.")
    with pytest.raises(ZoneError, match=r"generate.zone:12: \$GENERATE"):
        plan_zone_edit(
            corpus_dir / "generate.zone", ORIGIN, {owner: {NEW}}, {owner: {TlsaParams(3, 1, 1)}}
        )


def test_unchanged_zone_plans_nothing(tmp_path: Path) -> None:
    path = zone(tmp_path, HEAD + f"_25._tcp.mail IN TLSA 3 1 1 {NEW.data.hex().upper()}\n")
    edit = plan(path)
    assert not edit.changed and edit.new_serial is None and edit.splices == []
    assert edit.unchanged[0].after == {NEW} and edit.unchanged[0].ttl == 300
    assert edit.old_serial == 2024010101 and edit.soa_minimum == 300


def test_write_refuses_a_file_changed_since_planning(tmp_path: Path) -> None:
    path = zone(tmp_path, HEAD)
    edit = plan(path)
    path.write_text(HEAD + "new IN A 192.0.2.99\n")
    with pytest.raises(ZoneError, match="changed since"):
        edit.diff()


def test_diff_is_unified_with_context(tmp_path: Path) -> None:
    filler = "".join(f"h{i} IN A 192.0.2.{i}\n" for i in range(20))
    path = zone(tmp_path, HEAD + filler + f"_25._tcp.mail 60 IN TLSA 3 1 1 {OLD_HEX}\n" + filler)
    diff = plan(path).diff()
    lines = diff.splitlines()
    assert lines[0] == f"--- {path}" and lines[1] == f"+++ {path}"
    assert lines[2] == "@@ -1,5 +1,5 @@"
    assert "-@ IN SOA ns1.example.com. hostmaster.example.com. ( 2024010101 ; Serial" in lines
    assert "+@ IN SOA ns1.example.com. hostmaster.example.com. ( 2024050100 ; Serial" in lines
    hunk = lines.index("@@ -24,7 +24,7 @@")
    assert lines[hunk + 1 : hunk + 8] == [
        " h17 IN A 192.0.2.17",
        " h18 IN A 192.0.2.18",
        " h19 IN A 192.0.2.19",
        f"-_25._tcp.mail 60 IN TLSA 3 1 1 {OLD_HEX}",
        f"+_25._tcp.mail\t60\tIN\tTLSA\t3 1 1 {NEW.data.hex()}",
        " h0 IN A 192.0.2.0",
        " h1 IN A 192.0.2.1",
    ]
    assert len(lines) == hunk + 9


def test_anchor_override_and_origin_dependent_owner_text(tmp_path: Path) -> None:
    text = (
        HEAD
        + "$ORIGIN other.example.com.\nwww IN A 192.0.2.8\n$ORIGIN example.com.\nz IN A 192.0.2.9\n"
    )
    path = zone(tmp_path, text)
    www = dnsname.from_text("www.other.example.com.")
    edit = plan(path, anchors={OWNER: www})
    from io import BytesIO

    out = BytesIO()
    edit.write_to(out)
    # written next to www, where $ORIGIN is not the zone origin: the owner is absolute
    assert (
        f"www IN A 192.0.2.8\n_25._tcp.mail.example.com.\tIN\tTLSA\t3 1 1 {NEW.data.hex()}\n"
        "$ORIGIN example.com.\n"
    ) in out.getvalue().decode()


NO_TTL_HEAD = """@ 3600 IN SOA ns1.example.com. hostmaster.example.com. 7 7200 3600 1209600 300
  IN NS ns1
ns1 IN A 192.0.2.1
mail IN A 192.0.2.25
"""
OLD_TLSA_120 = f"_25._tcp.mail 120 IN TLSA 3 1 1 {OLD_HEX}\n"


def test_generate_after_removed_record_keeps_its_ttl(tmp_path: Path, zc: Any) -> None:
    # Without $TTL, a $GENERATE that omits its TTL inherits one like any record.
    path = zone(tmp_path, NO_TTL_HEAD + OLD_TLSA_120 + "$GENERATE 1-2 g$ A 10.0.0.$\n")
    before = zc.parse_zone(path, ORIGIN)
    out = tmp_path / "edited"
    out.write_bytes(zc.written(plan(path, ttl=300)))
    assert b"\n$GENERATE 1-2 g$ 120 A 10.0.0.$\n" in out.read_bytes()
    after = zc.parse_zone(out, ORIGIN)
    g1 = (dnsname.from_text("g1.example.com."), 1)
    assert before[g1][0] == after[g1][0] == 120
    assert zc.named_checkzone(out, ORIGIN).returncode == 0


@pytest.mark.parametrize(
    ("included", "after", "where"),
    [
        # the included file's first record would take the new TTL
        ("x IN A 192.0.2.9\n", "", "inc.db:1:"),
        # BIND and dnspython disagree on what the record after the $INCLUDE inherits
        ("x 600 IN A 192.0.2.9\n", "y IN A 192.0.2.10\n", "db.example.com:7:"),
    ],
)
def test_ttl_that_cannot_be_kept_across_include_is_refused(
    tmp_path: Path, included: str, after: str, where: str
) -> None:
    (tmp_path / "inc.db").write_text(included)
    path = zone(tmp_path, NO_TTL_HEAD + OLD_TLSA_120 + f"$INCLUDE {tmp_path}/inc.db\n" + after)
    before = path.read_bytes()
    with pytest.raises(ZoneError, match="states no TTL") as info:
        plan(path, ttl=300)
    assert where in str(info.value)
    assert path.read_bytes() == before


def test_include_with_ttls_before_a_record_that_states_one_is_fine(tmp_path: Path, zc: Any) -> None:
    (tmp_path / "inc.db").write_text("x 600 IN A 192.0.2.9\n")
    text = NO_TTL_HEAD + OLD_TLSA_120 + f"$INCLUDE {tmp_path}/inc.db\ny 60 IN A 192.0.2.10\n"
    path = zone(tmp_path, text)
    out = tmp_path / "edited"
    out.write_bytes(zc.written(plan(path, ttl=300)))
    before, after = zc.parse_zone(path, ORIGIN), zc.parse_zone(out, ORIGIN)
    assert {k: v for k, v in before.items() if k[1] not in (6, 52)} == {
        k: v for k, v in after.items() if k[1] not in (6, 52)
    }


def test_new_record_where_no_ttl_is_in_effect_still_reads_back(tmp_path: Path) -> None:
    # Found by benchmarks/fuzz_zone_atheris.py: records before the SOA, no $TTL and no TTL on
    # them. named rejects such a zone ("no TTL specified"), so a deploy ends in a restore; but
    # the line we write must not be the one our own reader cannot read back.
    text = (
        "mail IN A 192.0.2.25\n"
        "@ IN SOA ns1.example.com. hostmaster.example.com. ( 1 7200 3600 1209600 300 )\n"
        "  IN NS ns1\n"
    )
    path = zone(tmp_path, text)
    edit = plan(path)
    again = tmp_path / "db.again"
    with again.open("wb") as out:
        edit.write_to(out)
    assert f"_25._tcp.mail\t300\tIN\tTLSA\t3 1 1 {NEW.data.hex()}" in again.read_text()
    second = plan_zone_edit(again, ORIGIN, {OWNER: {NEW}}, {OWNER: {TlsaParams(3, 1, 1)}}, now=NOW)
    assert not second.changed
