"""Bad input, one row each: the user sees one exact line, the exit code is non-zero, and the
zone file is exactly as it was (or, when the failure comes after publishing, the record is
published and the exit still says something is wrong).

Every row runs the real command line against a real named (one zone per row, so rows cannot
disturb each other). The same rows make up the table in docs/bad-input.md; the last test reads
that table back so the document and the tests cannot drift apart.
"""

from __future__ import annotations

import hashlib
import re
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dns.rdatatype
import pytest
from cryptography.hazmat.primitives import serialization

from tests.helpers.cli import run_cli, write_settings
from tests.helpers.pki import Pki, key_pem, make_pki, write_lineage
from tests.services.named import NamedServer, ZoneSpec

pytestmark = pytest.mark.services

DOC = Path(__file__).resolve().parents[2] / "docs" / "bad-input.md"
PREFIX = "certbot-dane-tlsa: error: "

ZONE_TEXT = """\
$TTL 300
@       IN SOA ns1 hostmaster (
                1       ; serial
                3600 600 86400 300 )
        IN NS  ns1
ns1     IN A   127.0.0.1
mx      IN A   127.0.0.1
"""


@dataclass
class Ctx:
    """One row's world: a zone of its own in the shared named, a lineage, a settings file.
    A row's ``setup`` breaks exactly one thing in it."""

    tmp: Path
    named: NamedServer
    zone: str
    zone_file: Path
    pki: Pki
    live: Path
    config: Path
    lineage: Path | None
    args: list[str] = field(default_factory=list)
    values: dict[str, str] = field(default_factory=dict)  # fills <placeholders>

    @property
    def archive(self) -> Path:
        return self.tmp / "le" / "archive" / f"mx.{self.zone}"

    def append_zone(self, text: str) -> None:
        self.zone_file.write_text(self.zone_file.read_text() + text)

    def closed_port(self) -> int:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])

    def broken_rndc(self) -> str:
        # rndc's own config names named's control port; -p 1 points it where nobody listens.
        return " ".join([*self.named.rndc_argv, "-p", "1"])


@dataclass(frozen=True)
class Case:
    name: str  # the "input error" column of docs/bad-input.md
    setup: Callable[[Ctx], None]
    # The last stderr line without the "certbot-dane-tlsa: error: " prefix. <name> stands for a
    # value of the row's world (<live>, <zone_file>, <zone>, ...); "…" for text from another
    # program (TOML parser, named-checkzone, the OS) that we do not control word for word.
    message: str
    exit_code: int = 1
    published: bool = False  # the failure came after the record was published


def _remove_cert(c: Ctx) -> None:
    (c.archive / "cert1.pem").unlink()  # live/cert.pem now points nowhere


def _empty_cert(c: Ctx) -> None:
    (c.archive / "cert1.pem").write_bytes(b"")


def _corrupt_cert(c: Ctx) -> None:
    (c.archive / "cert1.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\nnot base64 at all\n")


def _key_mismatch(c: Ctx) -> None:
    (c.archive / "privkey1.pem").write_bytes(key_pem(make_pki("p256", ["x.test"]).leaf_key))


def _missing_lineage(c: Ctx) -> None:
    c.lineage = c.tmp / "le" / "live" / "no-such-name"
    c.values["lineage"] = str(c.lineage)


def _no_lineage(c: Ctx) -> None:
    c.lineage = None


def _missing_config(c: Ctx) -> None:
    c.config = c.tmp / "absent.toml"
    c.values["config"] = str(c.config)


def _invalid_toml(c: Ctx) -> None:
    c.config.write_text(c.config.read_text() + "zone_file = [unclosed\n")


def _unknown_key(c: Ctx) -> None:
    c.config.write_text(c.config.read_text() + 'zone_fiel = "/tmp/x"\n')


def _world_writable(c: Ctx) -> None:
    c.config.chmod(0o666)


def _bad_port(c: Ctx) -> None:
    c.args += ["--ports", "25,70000"]


def _bad_params(c: Ctx) -> None:
    c.args += ["--params", "3 1 9"]


def _shell_container(c: Ctx) -> None:
    c.args += ["--postfix-container", "x; rm -rf /", "--docker", "/nonexistent/docker"]


def _zone_file_missing(c: Ctx) -> None:
    missing = c.tmp / "db.missing"
    c.args += ["--zone-file", str(missing)]
    c.values["missing"] = str(missing)


def _no_soa(c: Ctx) -> None:
    text = c.zone_file.read_text()
    c.zone_file.write_text(re.sub(r"@\s+IN SOA .*?\)\n", "", text, flags=re.S))


def _two_soas(c: Ctx) -> None:
    c.append_zone("@ IN SOA ns1 hostmaster 7 3600 600 86400 300\n")


def _unbalanced(c: Ctx) -> None:
    c.append_zone('txt IN TXT ( "one"\n')


def _outside(c: Ctx) -> None:
    c.args += ["--hosts", "mx.elsewhere.test"]


def _cname_at_owner(c: Ctx) -> None:
    c.append_zone("_25._tcp.mx IN CNAME mx\n")


def _rndc_unreachable(c: Ctx) -> None:
    c.args += ["--rndc", c.broken_rndc()]


def _rndc_reload_fails(c: Ctx) -> None:
    # dynamic = no: no zonestatus first, so the first rndc call is the reload, after the swap.
    c.args += ["--rndc", c.broken_rndc(), "--dynamic", "no"]


def _verify_unreachable(c: Ctx) -> None:
    port = c.closed_port()
    c.values["ns"] = f"127.0.0.1:{port}"
    c.args += ["--nameservers", c.values["ns"], "--verify-timeout", "2"]


def _docker_missing(c: Ctx) -> None:
    c.args += ["--docker", "/nonexistent/docker", "--postfix-container", "x"]
    c.args += ["--verify", "false", "--live-check", "false"]


def _container_missing(c: Ctx) -> None:
    # podman is the real container runtime on these machines (no Docker engine).
    c.args += ["--docker", "podman", "--postfix-container", "no-such-container"]
    c.args += ["--verify", "false", "--live-check", "false"]


CASES = [
    Case(
        "missing cert file",
        _remove_cert,
        "<live>/cert.pem: is a dangling symlink in the certbot lineage",
    ),
    Case("empty cert", _empty_cert, "<live>/cert.pem: the certificate file is empty"),
    Case(
        "corrupt cert", _corrupt_cert, "<live>/cert.pem: no readable PEM certificate in this file"
    ),
    Case(
        "key mismatch",
        _key_mismatch,
        "<live>/privkey.pem: the private key does not belong to the certificate in <live>/cert.pem",
    ),
    Case(
        "missing lineage dir",
        _missing_lineage,
        "<lineage>: certbot lineage directory does not exist",
    ),
    Case(
        "no RENEWED_LINEAGE and no --lineage",
        _no_lineage,
        "no lineage: pass --lineage /etc/letsencrypt/live/NAME or run as a certbot deploy hook "
        "(RENEWED_LINEAGE)",
    ),
    Case("settings file missing", _missing_config, "settings file <config> does not exist"),
    Case("invalid TOML", _invalid_toml, "settings file <config> is not valid TOML: …"),
    Case("unknown key", _unknown_key, "<config>: unknown setting 'zone_fiel'"),
    Case(
        "world-writable settings file",
        _world_writable,
        "settings file <config> is writable by everyone; chmod o-w it",
    ),
    Case("bad port", _bad_port, "ports: '70000' is not a port number (1-65535)"),
    Case("bad params", _bad_params, "params: TLSA matching type 9 is not one of 0, 1, 2"),
    Case(
        "container name with shell metacharacters",
        _shell_container,
        "postfix_container: 'x; rm -rf /' is not a container name (letters, digits, '_', '.', '-')",
    ),
    Case("zone file missing", _zone_file_missing, "zone file <missing> does not exist"),
    Case("zone without SOA", _no_soa, "<zone_file>: no SOA record at the zone origin <zone>."),
    Case("two SOAs", _two_soas, "<zone_file>:8: a second SOA record for <zone>."),
    Case("unbalanced parentheses", _unbalanced, "<zone_file>:8: unbalanced parentheses"),
    Case(
        "owner outside zone",
        _outside,
        "host mx.elsewhere.test. is outside every configured zone (<zone>)",
    ),
    Case(
        "named-checkzone failure (CNAME at the TLSA owner)",
        _cname_at_owner,
        "named-checkzone rejected the edited zone <zone>: …CNAME…",
    ),
    Case(
        "rndc unreachable",
        _rndc_unreachable,
        "rndc zonestatus <zone> failed: rndc: connect failed: 127.0.0.1#1: connection refused",
    ),
    Case(
        "rndc reload failure",
        _rndc_reload_fails,
        "rndc reload <zone> failed: rndc: connect failed: 127.0.0.1#1: connection refused; "
        "the previous zone file was restored",
    ),
    Case(
        "nameserver unreachable during verify",
        _verify_unreachable,
        "primary <ns> did not answer SOA for <zone>: … (after waiting 2 s)",
        published=True,
    ),
    Case(
        "docker CLI missing",
        _docker_missing,
        "reload Postfix in container x: command not found: /nonexistent/docker",
        published=True,
    ),
    Case(
        "container missing",
        _container_missing,
        "reload Postfix in container no-such-container failed: Error: no container with name or "
        'ID "no-such-container" found: no such container',
        published=True,
    ),
]
CASES_BY_NAME = {c.name: c for c in CASES}


def matcher(template: str, values: dict[str, str]) -> re.Pattern[str]:
    parts = re.split(r"(<[a-z_]+>|…)", template)
    out = []
    for part in parts:
        if part == "…":
            out.append(".+")
        elif re.fullmatch(r"<[a-z_]+>", part):
            out.append(re.escape(values[part[1:-1]]))
        else:
            out.append(re.escape(part))
    return re.compile("".join(out))


def tlsa_line_digest(pki: Pki) -> str:
    spki = pki.leaf.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest()


@pytest.fixture(scope="module")
def named(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NamedServer]:
    zones = [ZoneSpec(f"z{i}.test", ZONE_TEXT, signed=False) for i in range(len(CASES))]
    server = NamedServer(tmp_path_factory.mktemp("named"), zones)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case: Case, named: NamedServer, tmp_path: Path) -> None:
    zone = f"z{CASES.index(case)}.test"
    zone_file = named.zone_file(zone)
    host = f"mx.{zone}"
    pki = make_pki("p256", [host])
    live = write_lineage(tmp_path / "le", host, pki)
    config = write_settings(
        tmp_path / "dane-tlsa.toml",
        zone=zone,
        zone_file=zone_file,
        rndc=named.rndc_argv,
        nameservers=[f"127.0.0.1:{named.port}"],
        verify_timeout=10,
    )
    ctx = Ctx(tmp_path, named, zone, zone_file, pki, live, config, live)
    ctx.values.update(live=str(live), config=str(config), zone=zone, zone_file=str(zone_file))
    case.setup(ctx)
    before = zone_file.read_bytes()

    argv: list[str | Path] = ["deploy", "--config", ctx.config]
    if ctx.lineage is not None:
        argv += ["--lineage", ctx.lineage]
    result = run_cli(*argv, *ctx.args, timeout=60)

    lines = result.stderr.strip().splitlines()
    assert lines, f"no stderr; stdout: {result.stdout}"
    assert lines[-1].startswith(PREFIX), result.stderr
    expected = matcher(case.message, ctx.values)
    assert expected.fullmatch(lines[-1][len(PREFIX) :]), (
        f"\nexpected: {case.message}\ngot:      {lines[-1]}\nstderr:\n{result.stderr}"
    )
    assert result.returncode == case.exit_code, result.stderr
    assert "Traceback" not in result.stderr
    assert [p.name for p in zone_file.parent.iterdir() if p.name.endswith(".tmp")] == []
    if case.published:
        # The record went out before the later step failed: it is in the file and served,
        # and the non-zero exit tells certbot's log that something still needs attention.
        text = zone_file.read_text()
        assert tlsa_line_digest(pki) in text
        response = named.query(f"_25._tcp.{host}", "TLSA", dnssec=False)
        served = {
            r.cert.hex() for s in response.answer if s.rdtype == dns.rdatatype.TLSA for r in s
        }
        assert served == {tlsa_line_digest(pki)}
    else:
        assert zone_file.read_bytes() == before, result.stderr


def _doc_rows() -> list[list[str]]:
    rows = []
    for line in DOC.read_text().splitlines():
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if set("".join(cells)) <= set("-: "):
            continue
        rows.append(cells)
    assert rows and rows[0][0].lower() == "input error", rows[:1]
    return rows[1:]


def _unmark(cell: str) -> str:
    return cell.replace("`", "").replace("\\|", "|")


def test_doc_table_matches_the_cases() -> None:
    rows = _doc_rows()
    names = [_unmark(r[0]) for r in rows]
    assert len(names) == len(set(names)), "a row appears twice in docs/bad-input.md"
    assert sorted(names) == sorted(CASES_BY_NAME), "docs/bad-input.md and CASES differ"
    for row in rows:
        case = CASES_BY_NAME[_unmark(row[0])]
        assert _unmark(row[1]) == PREFIX + case.message, row
        assert int(row[2]) == case.exit_code, row
        promise = row[3].lower()
        assert ("published" in promise) == case.published, row
        if not case.published:
            assert "unchanged" in promise, row
