"""Security properties of the deploy hook, which runs as root from certbot.

No shell ever sees a setting; a container name that tries to be a shell command is refused
before anything runs; the zone file keeps the owner, group and mode the admin gave it (named
may run as another user); private key material never reaches stderr or the log file; and a
deploy writes nothing but the files it manages.
"""

from __future__ import annotations

import ast
import base64
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

import dns.rdatatype
import pytest

from tests.helpers.cli import run_cli, write_settings
from tests.helpers.pki import Pki, make_pki, write_lineage
from tests.services.named import NamedServer

pytestmark = pytest.mark.services

PACKAGE = Path(__file__).resolve().parents[2] / "certbot_dane_tlsa"
ZONE = "example.test"
HOST = "mx.example.test"
OWNER = f"_25._tcp.{HOST}."

# --- no shell -----------------------------------------------------------------------------

_SUBPROCESS_CALLS = {"run", "Popen", "call", "check_call", "check_output"}
_ALWAYS_SHELL = {
    ("os", "system"),
    ("os", "popen"),
    ("subprocess", "getoutput"),
    ("subprocess", "getstatusoutput"),
    ("asyncio", "create_subprocess_shell"),
    ("pty", "spawn"),
}


def _qualified(node: ast.expr, aliases: dict[str, tuple[str, str]]) -> tuple[str, str] | None:
    """(module, function) a call target refers to, following `import x as y` and
    `from x import f as g`."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        module = aliases.get(node.value.id, (node.value.id, ""))[0]
        return module, node.attr
    if isinstance(node, ast.Name) and node.id in aliases and aliases[node.id][1]:
        return aliases[node.id]
    return None


def shell_calls(source: str, filename: str) -> list[str]:
    tree = ast.parse(source, filename)
    aliases: dict[str, tuple[str, str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                aliases[a.asname or a.name] = (a.name, "")
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                aliases[a.asname or a.name] = (node.module, a.name)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        target = _qualified(node.func, aliases)
        where = f"{filename}:{node.lineno}"
        if target in _ALWAYS_SHELL:
            found.append(f"{where}: {target[0]}.{target[1]}()")
            continue
        if target is not None and target[0] == "subprocess" and target[1] in _SUBPROCESS_CALLS:
            for kw in node.keywords:
                # shell=<anything but a literal False> may become a shell.
                if kw.arg == "shell" and not (
                    isinstance(kw.value, ast.Constant) and kw.value.value is False
                ):
                    found.append(f"{where}: subprocess.{target[1]}(shell=...)")
        if (
            target is not None
            and target[0] == "os"
            and re.fullmatch(r"exec\w+|spawn\w+", target[1])
        ):
            # Not a shell, but an exec path we want to know about: none exist today.
            found.append(f"{where}: os.{target[1]}()")
    return found


def test_scanner_finds_what_it_looks_for() -> None:
    sample = (
        "import os\nimport subprocess as sp\nfrom subprocess import run as r\n"
        "os.system('x')\nos.popen('x')\nsp.run('x', shell=True)\nr('x', shell=flag)\n"
        "sp.Popen(['x'], shell=False)\nsp.getoutput('x')\n"
    )
    assert [f.split(": ", 1)[1] for f in shell_calls(sample, "s.py")] == [
        "os.system()",
        "os.popen()",
        "subprocess.run(shell=...)",
        "subprocess.run(shell=...)",
        "subprocess.getoutput()",
    ]


def test_no_shell_anywhere_in_the_package() -> None:
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 20, files  # the scan really covered the package
    found = [hit for path in files for hit in shell_calls(path.read_text(), str(path))]
    assert found == [], "calls that can run a shell:\n" + "\n".join(found)


# --- the rest runs the real command line against a real named ---------------------------------


@dataclass
class World:
    named: NamedServer
    pki: Pki
    live: Path
    config: Path
    zone_file: Path
    tmp: Path

    def deploy(self, *extra: str | Path) -> object:
        return run_cli("deploy", "--config", self.config, "--lineage", self.live, *extra)


@pytest.fixture
def world(tmp_path: Path, signed_zone_server: NamedServer) -> World:
    named = signed_zone_server
    pki = make_pki("p256", [HOST])
    live = write_lineage(tmp_path / "le", HOST, pki)
    zone_file = named.zone_file(ZONE)
    config = write_settings(
        tmp_path / "dane-tlsa.toml",
        zone=ZONE,
        zone_file=zone_file,
        rndc=named.rndc_argv,
        nameservers=[f"127.0.0.1:{named.port}"],
        verify_timeout=20,
    )
    return World(named, pki, live, config, zone_file, tmp_path)


def served(named: NamedServer) -> set[str]:
    response = named.query(OWNER, "TLSA")
    return {r.cert.hex() for s in response.answer if s.rdtype == dns.rdatatype.TLSA for r in s}


@pytest.mark.parametrize("where", ["flag", "toml"])
def test_container_name_with_shell_syntax_is_refused_before_anything_runs(
    world: World, where: str
) -> None:
    before = world.zone_file.read_bytes()
    mtime = world.zone_file.stat().st_mtime_ns
    evil = "x; rm -rf /"
    extra: list[str] = ["--docker", "/nonexistent/docker"]
    if where == "flag":
        extra += ["--postfix-container", evil]
    else:
        world.config.write_text(world.config.read_text() + f'postfix_container = "{evil}"\n')
    result = world.deploy(*extra)
    assert result.returncode == 1, result.stderr  # type: ignore[attr-defined]
    lines = result.stderr.strip().splitlines()  # type: ignore[attr-defined]
    assert lines == [
        "certbot-dane-tlsa: error: postfix_container: 'x; rm -rf /' is not a container name "
        "(letters, digits, '_', '.', '-')"
    ]
    # Had any command been tried, /nonexistent/docker would have said "command not found";
    # had the publisher started, it would have created the zone lock file.
    assert "command not found" not in result.stderr  # type: ignore[attr-defined]
    lock = world.zone_file.parent / f".{world.zone_file.name}.dane-tlsa.lock"
    assert not lock.exists()
    assert world.zone_file.read_bytes() == before
    assert world.zone_file.stat().st_mtime_ns == mtime


def test_zone_file_keeps_owner_group_and_mode(world: World) -> None:
    # Like root:bind 0640 on a Debian system. named, although started as root, drops the
    # capability to read files it has no permission bits for, so its group must stay root.
    os.chown(world.zone_file, 1234, 0)
    os.chmod(world.zone_file, 0o640)
    inode = world.zone_file.stat().st_ino
    result = world.deploy()
    assert result.returncode == 0, result.stderr  # type: ignore[attr-defined]
    st = world.zone_file.stat()
    assert st.st_ino != inode, "the file was not replaced, so this proves nothing"
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1234, 0, 0o640)
    assert len(served(world.named)) == 1


def _key_fragments(live: Path) -> list[str]:
    """Overlapping 24-character pieces of the base64 body of privkey.pem, plus its DER hex."""
    pem = (live / "privkey.pem").read_text()
    body = "".join(line for line in pem.splitlines() if line and not line.startswith("-----"))
    pieces = [body[i : i + 24] for i in range(0, max(len(body) - 24, 1), 12)]
    der_hex = base64.b64decode(body).hex()
    pieces += [der_hex[i : i + 32] for i in range(0, max(len(der_hex) - 32, 1), 16)]
    return pieces


def _assert_no_key(live: Path, *texts: str) -> None:
    fragments = _key_fragments(live)
    for text in texts:
        assert "PRIVATE KEY" not in text
        leaked = [f for f in fragments if f in text]
        assert leaked == [], f"private key material in output: {leaked[:3]}"


def _truncate_key(world: World) -> None:
    target = (world.live / "privkey.pem").resolve()
    lines = target.read_text().splitlines()
    target.write_text("\n".join(lines[: len(lines) // 2 + 1]) + "\n")


def _break_rndc(world: World) -> list[str]:
    return ["--rndc", " ".join([*world.named.rndc_argv, "-p", "1"]), "--dynamic", "no"]


@pytest.mark.parametrize("scenario", ["success", "truncated key", "reload fails"])
def test_private_key_never_reaches_stderr_or_log(world: World, scenario: str) -> None:
    log_file = world.tmp / "dane-tlsa.log"
    extra: list[str] = ["-v", "--log-file", str(log_file)]
    pem_before = (world.live / "privkey.pem").read_text()
    if scenario == "truncated key":
        _truncate_key(world)
    elif scenario == "reload fails":
        extra += _break_rndc(world)
    result = world.deploy(*extra)
    stderr, stdout = result.stderr, result.stdout  # type: ignore[attr-defined]
    if scenario == "success":
        assert result.returncode == 0, stderr  # type: ignore[attr-defined]
    else:
        assert result.returncode == 1, stderr  # type: ignore[attr-defined]
        assert stderr.strip().splitlines()[-1].startswith("certbot-dane-tlsa: error: ")
    if scenario != "truncated key":
        assert "running: " in stderr  # -v really logged the commands and their output
    logged = log_file.read_text()
    assert logged.strip(), "the log file stayed empty, so this proves nothing"
    # Check against the key as it was and as it is now (the truncated one is a prefix).
    for text in (stderr, stdout, logged):
        assert "PRIVATE KEY" not in text
        body = "".join(
            line for line in pem_before.splitlines() if line and not line.startswith("-----")
        )
        pieces = [body[i : i + 24] for i in range(0, len(body) - 24, 12)]
        assert [p for p in pieces if p in text] == []
    _assert_no_key(world.live, stderr, stdout, logged)


def _snapshot(root: Path) -> dict[str, tuple[int, int, int, int]]:
    out = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        out[str(path.relative_to(root))] = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_mode)
    return out


_NAMED_OWN = re.compile(r"\.(jnl|jbk|signed|signed\.jnl)$")


def test_deploy_writes_only_the_files_it_manages(world: World) -> None:
    zone_dir = world.zone_file.parent
    before_zones = _snapshot(zone_dir)
    # The lineage itself (live/ and archive/) is certbot's: read, never written. The tool's
    # own rollover state lives beside it in <config-dir>/dane-tlsa/ and may change.
    lineage_dirs = [world.tmp / "le" / "live", world.tmp / "le" / "archive"]
    before_le = [_snapshot(d) for d in lineage_dirs]
    config_before = (world.config.read_bytes(), world.config.stat().st_mtime_ns)
    result = world.deploy()
    assert result.returncode == 0, result.stderr  # type: ignore[attr-defined]

    after_zones = _snapshot(zone_dir)
    changed = {
        name
        for name in before_zones.keys() | after_zones.keys()
        if before_zones.get(name) != after_zones.get(name)
    }
    name = world.zone_file.name
    ours = {name, f".{name}.dane-tlsa.lock", f".{name}.dane-tlsa.bak"}
    assert name in changed
    unexpected = {c for c in changed - ours if not _NAMED_OWN.search(c)}
    assert unexpected == set(), f"deploy touched {sorted(unexpected)}"
    assert [_snapshot(d) for d in lineage_dirs] == before_le, "deploy changed the lineage"
    others = {p.name for p in (world.tmp / "le").iterdir()} - {"live", "archive", "dane-tlsa"}
    assert others == set(), f"deploy created {sorted(others)} in the certbot config dir"
    assert (world.config.read_bytes(), world.config.stat().st_mtime_ns) == config_before
    # The lock file is private to root; the backup is the previous zone file, same mode.
    lock = zone_dir / f".{name}.dane-tlsa.lock"
    assert stat.S_IMODE(lock.stat().st_mode) & 0o077 == 0
