"""Settings: one table of keys that feeds the TOML file, the command line and certbot.

The same key has the same name, meaning and validation wherever a user sets it: `zone_file`
in the TOML file, `--zone-file` on the command line, `--dane-tlsa-zone-file` for certbot (saved
as `dane_tlsa_zone_file` in the lineage's renewal config). The docs' settings reference is
generated from :data:`OPTIONS`, so this module is the single source of truth.

Values arrive typed from TOML and as strings from flags and certbot; :func:`convert` accepts
both, so a list is a TOML list or a comma-separated string, and a command prefix is a TOML
list or a string split the way a shell would split it (but never run by one).
"""

from __future__ import annotations

import os
import re
import shlex
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from certbot_dane_tlsa import dnsname
from certbot_dane_tlsa.dnsname import Name
from certbot_dane_tlsa.errors import SettingsError
from certbot_dane_tlsa.lite_dataclasses import dataclass, field
from certbot_dane_tlsa.records import TlsaParams

DEFAULT_CONFIG = Path("/etc/letsencrypt/dane-tlsa.toml")
CONFIG_ENV = "CERTBOT_DANE_TLSA_CONFIG"
SERIAL_METHODS = ("auto", "increment", "date", "unixtime", "keep")
BACKENDS = ("zonefile", "rfc2136")
MODES = ("rollover", "replace")


@dataclass(frozen=True)
class Option:
    """One setting. ``kind`` selects the converter; ``zone_level`` allows it in [[zone]]."""

    key: str
    kind: str
    default: Any
    help: str
    zone_level: bool = False
    choices: tuple[str, ...] = ()
    metavar: str = "VALUE"

    @property
    def flag(self) -> str:
        return "--" + self.key.replace("_", "-")


OPTIONS: tuple[Option, ...] = (
    Option("zone", "name", None, "Zone origin, e.g. example.com.", True, metavar="ZONE"),
    Option(
        "zone_file",
        "path",
        None,
        "The zone's master file (the unsigned one, for inline-signing zones).",
        True,
        metavar="FILE",
    ),
    Option(
        "hosts",
        "names",
        [],
        "Host names that get TLSA records (default: the certificate's names inside the zone).",
        metavar="NAMES",
    ),
    Option("ports", "ports", [25], "Ports that get TLSA records.", metavar="PORTS"),
    Option("proto", "proto", "tcp", "Transport label of the TLSA owner name.", metavar="PROTO"),
    Option("params", "params", ["3 1 1"], "TLSA usage/selector/matching triples.", metavar="LIST"),
    Option(
        "ttl",
        "ttl",
        None,
        "TTL of the TLSA records written (default: the zone's default).",
        True,
        metavar="SECONDS",
    ),
    Option(
        "serial",
        "choice",
        "auto",
        "How the SOA serial moves: auto keeps the file's format.",
        True,
        choices=SERIAL_METHODS,
    ),
    Option("backend", "choice", "zonefile", "How records are published.", True, choices=BACKENDS),
    Option("rndc", "command", ["rndc"], "Command prefix for rndc.", True, metavar="COMMAND"),
    Option(
        "view",
        "str",
        None,
        "BIND view that holds the zone (passed to rndc as ZONE IN VIEW).",
        True,
        metavar="VIEW",
    ),
    Option(
        "checkzone",
        "command",
        ["named-checkzone"],
        "Command prefix that validates a zone file (gets ZONE FILE).",
        True,
        metavar="COMMAND",
    ),
    Option(
        "nameservers",
        "servers",
        ["127.0.0.1:53"],
        "Authoritative servers to verify against, host[:port].",
        True,
        metavar="SERVERS",
    ),
    Option(
        "verify",
        "bool",
        True,
        "Check what the servers serve after publishing. With false the tool never queries "
        "DNS, and a run that finds the file already right reloads the zone unasked, in case "
        "an earlier run's reload was lost.",
        True,
    ),
    Option(
        "verify_ns",
        "bool",
        None,
        "Also verify every server in the zone's NS set (addresses looked up at the primary). "
        "Default: yes when 'nameservers' is not set, no when it lists the servers.",
        True,
    ),
    Option(
        "ns_port",
        "port",
        53,
        "Port on which the NS-set servers answer (for verify_ns).",
        True,
        metavar="PORT",
    ),
    Option(
        "server",
        "server",
        None,
        "Primary that takes RFC 2136 updates, host[:port] (default: the first nameserver).",
        True,
        metavar="SERVER",
    ),
    Option(
        "tsig_key_file",
        "path",
        None,
        "TSIG key for RFC 2136 updates, in BIND key-file syntax (tsig-keygen output).",
        True,
        metavar="FILE",
    ),
    Option(
        "tsig_key_name",
        "str",
        None,
        "Which key of tsig_key_file to use when it holds several.",
        True,
        metavar="NAME",
    ),
    Option(
        "update_retries",
        "int",
        5,
        "How often an RFC 2136 update is re-read and retried when another writer got there first.",
        True,
        metavar="N",
    ),
    Option(
        "verify_timeout",
        "seconds",
        30.0,
        "How long to wait for the servers to serve the new records.",
        metavar="SECONDS",
    ),
    Option(
        "dynamic",
        "choice",
        "auto",
        "Whether the zone takes dynamic updates (then edits use rndc freeze/thaw).",
        True,
        choices=("auto", "yes", "no"),
    ),
    Option(
        "postfix_container",
        "container",
        None,
        "Docker container whose Postfix to reload.",
        metavar="NAME",
    ),
    Option(
        "postfix_reload",
        "bool",
        False,
        "Reload the host's Postfix (when no container is set).",
    ),
    Option(
        "postfix_command",
        "command",
        ["postfix"],
        "Command prefix for postfix (e.g. 'postfix -c /etc/postfix-out').",
        metavar="COMMAND",
    ),
    Option(
        "dovecot_container",
        "container",
        None,
        "Docker container whose Dovecot to reload.",
        metavar="NAME",
    ),
    Option("dovecot_reload", "bool", False, "Reload the host's Dovecot."),
    Option(
        "dovecot_command",
        "command",
        ["doveadm"],
        "Command prefix for doveadm (e.g. 'doveadm -c /etc/dovecot-test/dovecot.conf').",
        metavar="COMMAND",
    ),
    Option(
        "reload_commands",
        "commands",
        [],
        "Further commands to run after publishing (argv lists).",
        metavar="COMMANDS",
    ),
    Option(
        "docker", "command", ["docker"], "Command prefix for the Docker CLI.", metavar="COMMAND"
    ),
    Option(
        "live_check",
        "bool",
        True,
        "After reloading services, check the key the live server presents.",
    ),
    Option(
        "live_check_timeout",
        "seconds",
        30.0,
        "How long the live check waits for the server to present a key the records vouch for.",
        metavar="SECONDS",
    ),
    Option(
        "connect",
        "connect",
        None,
        "Address the live check connects to: one for every host, or host=address pairs "
        "(a TOML table, or 'mx1.example.com=10.0.0.1,mx2.example.com=10.0.0.2') for servers "
        "behind NAT. Default: the host name.",
        metavar="ADDRESS",
    ),
    Option(
        "tls_check",
        "str",
        None,
        "TLS mode of the live check: starttls-smtp, starttls-imap, starttls-pop3, tls.",
        metavar="MODE",
    ),
    Option("log_file", "path", None, "Append a log here as well as stderr.", metavar="FILE"),
    Option(
        "mode",
        "choice",
        "rollover",
        "How a key change reaches DNS: rollover keeps the key across renewals (reuse_key) and "
        "changes it only by a planned current + next rollover; replace swaps the record when a "
        "renewal brings a new key (senders that cached the old record fail for up to 2 x TTL).",
        choices=MODES,
    ),
    Option(
        "key_max_age",
        "int",
        None,
        "Days after which certbot's renewal run stages a next key by itself (rollover mode); "
        "the commit then comes from 'rollover commit --if-safe' on a timer.",
        metavar="DAYS",
    ),
    Option(
        "state_dir",
        "path",
        None,
        "Where the rollover state and staged keys live, one subdirectory per certificate "
        "(default: <certbot config dir>/dane-tlsa).",
        metavar="DIR",
    ),
    Option(
        "resolver",
        "server",
        None,
        "Validating resolver, host[:port], that must serve a next key's records with the AD bit "
        "before a rollover commits.",
        metavar="SERVER",
    ),
    Option(
        "certbot",
        "command",
        ["certbot"],
        "Command prefix that runs certbot for 'rollover commit'.",
        metavar="COMMAND",
    ),
)
OPTIONS_BY_KEY = {o.key: o for o in OPTIONS}
ZONE_KEYS = frozenset(o.key for o in OPTIONS if o.zone_level)

_HOSTNAME_RE = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")
_CONTAINER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_TTL_RE = re.compile(r"^(?:(\d+)([smhdw]?))+$", re.IGNORECASE)
_TTL_PART_RE = re.compile(r"(\d+)([smhdw]?)", re.IGNORECASE)
_TTL_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True)
class Nameserver:
    host: str
    port: int = 53

    @classmethod
    def parse(cls, text: str) -> Nameserver:
        text = text.strip()
        if text.startswith("["):
            host, _, rest = text[1:].partition("]")
            port_text = rest[1:] if rest.startswith(":") else ""
        elif text.count(":") == 1:
            host, _, port_text = text.partition(":")
        else:
            host, port_text = text, ""
        if not host:
            raise SettingsError(f"nameserver {text!r} has no host")
        if port_text and not port_text.isdigit():
            raise SettingsError(f"nameserver {text!r} has a port that is not a number")
        port = int(port_text) if port_text else 53
        if not 0 < port < 65536:
            raise SettingsError(f"nameserver {text!r} has a port outside 1-65535")
        return cls(host, port)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class ZoneSettings:
    origin: Name
    zone_file: Path | None
    serial: str
    backend: str
    rndc: tuple[str, ...]
    view: str | None
    checkzone: tuple[str, ...]
    nameservers: tuple[Nameserver, ...]
    verify: bool
    dynamic: str
    ttl: int | None
    verify_ns: bool
    ns_port: int
    server: Nameserver | None
    tsig_key_file: Path | None
    tsig_key_name: str | None
    update_retries: int

    @property
    def name(self) -> str:
        return self.origin.to_text(omit_final_dot=True)


@dataclass(frozen=True)
class Settings:
    zones: tuple[ZoneSettings, ...]
    hosts: tuple[Name, ...]
    ports: tuple[int, ...]
    proto: str
    params: tuple[TlsaParams, ...]
    verify_timeout: float
    postfix_container: str | None
    postfix_reload: bool
    postfix_command: tuple[str, ...]
    dovecot_container: str | None
    dovecot_reload: bool
    dovecot_command: tuple[str, ...]
    reload_commands: tuple[tuple[str, ...], ...]
    docker: tuple[str, ...]
    live_check: bool
    live_check_timeout: float
    connect: dict[str, str] | None
    tls_check: str | None
    log_file: Path | None
    sources: tuple[str, ...] = field(default=())
    mode: str = "rollover"
    key_max_age: int | None = None
    state_dir: Path | None = None
    resolver: Nameserver | None = None
    certbot: tuple[str, ...] = ("certbot",)

    def connect_address(self, host: Name) -> str:
        """Where the live check connects for ``host``: its own entry, the default, or itself."""
        text = host.to_text(omit_final_dot=True)
        if self.connect is None:
            return text
        return self.connect.get(text, self.connect.get("*", text))

    def zone_for(self, name: Name) -> ZoneSettings | None:
        """The zone with the longest origin that contains ``name`` (RFC 1034 closest zone)."""
        best: ZoneSettings | None = None
        for zone in self.zones:
            if name.is_subdomain(zone.origin) and (
                best is None or len(zone.origin) > len(best.origin)
            ):
                best = zone
        return best


# --- converters ------------------------------------------------------------------------------


def _as_list(value: Any, key: str) -> list[Any]:
    if isinstance(value, list | tuple):
        return list(value)
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, int) and not isinstance(value, bool):
        return [value]
    raise SettingsError(f"{key}: expected a list or a comma-separated string, got {value!r}")


def parse_name(text: str, key: str) -> Name:
    if not isinstance(text, str) or not text.strip():
        raise SettingsError(f"{key}: expected a domain name, got {text!r}")
    labels = text.strip().rstrip(".").split(".")
    if text.strip() in (".", "") or not all(_HOSTNAME_RE.match(label) for label in labels):
        raise SettingsError(f"{key}: {text!r} is not a valid domain name")
    return dnsname.from_text(text.strip().lower())


def parse_ttl(value: Any, key: str = "ttl") -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    elif isinstance(value, str) and _TTL_RE.match(value.strip()):
        seconds = sum(
            int(n) * _TTL_UNITS[u.lower()] for n, u in _TTL_PART_RE.findall(value.strip())
        )
    else:
        raise SettingsError(f"{key}: {value!r} is not a TTL (seconds, or like 1h30m)")
    if not 0 <= seconds <= 2**31 - 1:
        raise SettingsError(f"{key}: {seconds} is outside 0..2147483647")
    return seconds


def parse_bool(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
    raise SettingsError(f"{key}: expected true or false, got {value!r}")


def parse_command(value: Any, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        try:
            parts = shlex.split(value)
        except ValueError as exc:
            raise SettingsError(f"{key}: cannot split {value!r}: {exc}") from None
    elif isinstance(value, list | tuple) and all(isinstance(p, str) for p in value):
        parts = list(value)
    else:
        raise SettingsError(f"{key}: expected a command (list or string), got {value!r}")
    if not parts or not parts[0]:
        raise SettingsError(f"{key}: the command is empty")
    if any("\x00" in p for p in parts):
        raise SettingsError(f"{key}: the command contains a NUL byte")
    return tuple(parts)


_ADDRESS_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,253}$")


def _parse_connect(value: Any, key: str) -> dict[str, str]:
    """``"10.0.0.1"`` (every host), ``"mx1=10.0.0.1,mx2=10.0.0.2"``, or a TOML table."""
    if isinstance(value, dict):
        pairs = [(str(h), str(a)) for h, a in value.items()]
    elif isinstance(value, str) and "=" in value:
        pairs = []
        for item in _as_list(value, key):
            host, sep, address = item.partition("=")
            if not sep:
                raise SettingsError(f"{key}: {item!r} is not host=address")
            pairs.append((host.strip(), address.strip()))
    elif isinstance(value, str):
        pairs = [("*", value.strip())]
    else:
        raise SettingsError(f"{key}: expected an address or host=address pairs, got {value!r}")
    result: dict[str, str] = {}
    for host, address in pairs:
        if not _ADDRESS_RE.match(address):
            raise SettingsError(f"{key}: {address!r} is not an address or host name")
        name = "*" if host == "*" else parse_name(host, key).to_text(omit_final_dot=True)
        result[name] = address
    return result


def convert(option: Option, value: Any) -> Any:
    """Check and convert one raw value (TOML-typed or a string from a flag or certbot).

    Every error message starts with the key, so the user knows which setting to fix.
    """
    try:
        return _convert(option, value)
    except SettingsError as exc:
        message = str(exc)
        if message.startswith(f"{option.key}:"):
            raise
        raise SettingsError(f"{option.key}: {message}") from None


def _convert(option: Option, value: Any) -> Any:
    key, kind = option.key, option.kind
    if value is None:
        return None
    if kind == "name":
        return parse_name(value, key)
    if kind == "names":
        return tuple(parse_name(str(v), key) for v in _as_list(value, key))
    if kind == "path":
        if not isinstance(value, str) or not value or "\x00" in value:
            raise SettingsError(f"{key}: expected a file path, got {value!r}")
        return Path(value).expanduser()
    if kind == "ports":
        ports = []
        for item in _as_list(value, key):
            text = str(item).strip()
            if not text.isdigit() or not 0 < int(text) < 65536:
                raise SettingsError(f"{key}: {item!r} is not a port number (1-65535)")
            ports.append(int(text))
        if not ports:
            raise SettingsError(f"{key}: at least one port is needed")
        return tuple(dict.fromkeys(ports))
    if kind == "port":
        text = str(value).strip()
        if not text.isdigit() or not 0 < int(text) < 65536:
            raise SettingsError(f"{key}: {value!r} is not a port number (1-65535)")
        return int(text)
    if kind == "int":
        text = str(value).strip()
        if not text.isdigit() or int(text) > 1000:
            raise SettingsError(f"{key}: {value!r} is not a whole number from 0 to 1000")
        return int(text)
    if kind == "server":
        return Nameserver.parse(str(value))
    if kind == "proto":
        if not isinstance(value, str) or not re.match(r"^[A-Za-z][A-Za-z0-9-]{0,14}$", value):
            raise SettingsError(f"{key}: {value!r} is not a transport label such as 'tcp'")
        return value.lower()
    if kind == "params":
        params = tuple(dict.fromkeys(TlsaParams.parse(str(v)) for v in _as_list(value, key)))
        if not params:
            raise SettingsError(f"{key}: at least one TLSA parameter triple is needed")
        return params
    if kind == "ttl":
        return parse_ttl(value, key)
    if kind == "seconds":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        return float(parse_ttl(value, key))
    if kind == "choice":
        text = str(value).strip().lower()
        if text not in option.choices:
            raise SettingsError(f"{key}: {value!r} is not one of {', '.join(option.choices)}")
        return text
    if kind == "bool":
        return parse_bool(value, key)
    if kind == "command":
        return parse_command(value, key)
    if kind == "commands":
        if isinstance(value, str):
            items: list[Any] = [c for c in value.split(";") if c.strip()]
        elif isinstance(value, list | tuple):
            items = list(value)
        else:
            raise SettingsError(f"{key}: expected a list of commands, got {value!r}")
        return tuple(parse_command(item, key) for item in items)
    if kind == "servers":
        servers = tuple(Nameserver.parse(str(v)) for v in _as_list(value, key))
        if not servers:
            raise SettingsError(f"{key}: at least one server is needed")
        return servers
    if kind == "connect":
        return _parse_connect(value, key)
    if kind == "container":
        if not isinstance(value, str) or not _CONTAINER_RE.match(value):
            raise SettingsError(
                f"{key}: {value!r} is not a container name (letters, digits, '_', '.', '-')"
            )
        return value
    if kind == "str":
        if not isinstance(value, str) or "\x00" in value:
            raise SettingsError(f"{key}: expected a string, got {value!r}")
        return value
    raise AssertionError(f"unknown option kind {kind}")  # pragma: no cover


# --- sources ---------------------------------------------------------------------------------


@dataclass
class RawSettings:
    """Settings as collected from their sources, not yet checked or converted."""

    top: dict[str, Any] = field(default_factory=dict)
    zones: list[dict[str, Any]] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def update(self, values: Mapping[str, Any], source: str) -> None:
        """Later sources win; unknown keys are typos, and typos must not pass silently."""
        for key, value in values.items():
            if key not in OPTIONS_BY_KEY:
                raise SettingsError(f"{source}: unknown setting {key!r}")
            if value is not None:
                self.top[key] = value
        self.sources.append(source)


def check_file_is_private_enough(path: Path) -> None:
    """Refuse a settings file anyone can write: it names commands that run as root."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise SettingsError(f"cannot read settings file {path}: {exc.strerror}") from None
    if mode & stat.S_IWOTH:
        raise SettingsError(f"settings file {path} is writable by everyone; chmod o-w it")


def load_toml(path: Path, raw: RawSettings | None = None) -> RawSettings:
    import tomllib

    raw = raw or RawSettings()
    check_file_is_private_enough(path)
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise SettingsError(f"cannot read settings file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"settings file {path} is not valid TOML: {exc}") from None
    zone_tables = data.pop("zone", None)
    if zone_tables is not None and not isinstance(zone_tables, list):
        # `zone = "example.com"` is the zone name; [[zone]] tables are a list of dicts.
        data["zone"] = zone_tables
        zone_tables = None
    raw.update(data, str(path))
    for index, table in enumerate(zone_tables or []):
        where = f"{path} [[zone]] #{index + 1}"
        if not isinstance(table, dict):
            raise SettingsError(f"{where}: expected a table")
        unknown = set(table) - ZONE_KEYS
        if unknown:
            names = ", ".join(sorted(unknown))
            raise SettingsError(f"{where}: not a zone-level setting: {names}")
        if "zone" not in table:
            raise SettingsError(f"{where}: missing 'zone'")
        raw.zones.append(dict(table))
    return raw


def config_path(explicit: str | None, environ: Mapping[str, str]) -> tuple[Path, bool]:
    """The settings file to read and whether the user asked for it (then it must exist)."""
    if explicit:
        return Path(explicit), True
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV]), True
    return DEFAULT_CONFIG, False


def _zone_settings(values: Mapping[str, Any], where: str) -> ZoneSettings:
    def get(key: str) -> Any:
        option = OPTIONS_BY_KEY[key]
        value = values.get(key)
        return convert(option, value if value is not None else option.default)

    origin = get("zone")
    if origin is None:
        raise SettingsError(f"{where}: 'zone' is required (the zone origin, e.g. example.com)")
    backend = get("backend")
    zone_file = get("zone_file")
    if backend == "zonefile" and zone_file is None:
        raise SettingsError(f"{where}: 'zone_file' is required for zone {origin}")
    if backend == "rfc2136" and values.get("tsig_key_file") is None:
        raise SettingsError(f"{where}: 'tsig_key_file' is required for the rfc2136 backend")
    return ZoneSettings(
        origin=origin,
        zone_file=zone_file,
        serial=get("serial"),
        backend=backend,
        rndc=get("rndc"),
        view=get("view"),
        checkzone=get("checkzone"),
        nameservers=get("nameservers"),
        verify=get("verify"),
        dynamic=get("dynamic"),
        ttl=get("ttl"),
        verify_ns=get("verify_ns")
        if values.get("verify_ns") is not None
        else values.get("nameservers") is None,
        ns_port=get("ns_port"),
        server=get("server"),
        tsig_key_file=get("tsig_key_file"),
        tsig_key_name=get("tsig_key_name"),
        update_retries=get("update_retries"),
    )


def build(raw: RawSettings) -> Settings:
    """Check every value and build the settings the pipeline runs on."""
    top = raw.top
    zone_defaults = {k: v for k, v in top.items() if k in ZONE_KEYS and k != "zone"}
    zones: list[ZoneSettings] = []
    if top.get("zone") is not None:
        zones.append(_zone_settings(top, "settings"))
    for index, table in enumerate(raw.zones):
        zones.append(_zone_settings({**zone_defaults, **table}, f"[[zone]] #{index + 1}"))
    if not zones:
        raise SettingsError(
            "no zone configured: set 'zone' and 'zone_file' (in the settings file, "
            "as --zone/--zone-file, or as certbot's --dane-tlsa-zone/--dane-tlsa-zone-file)"
        )
    origins = [z.origin for z in zones]
    if len(set(origins)) != len(origins):
        raise SettingsError("the same zone is configured twice")

    def get(key: str) -> Any:
        option = OPTIONS_BY_KEY[key]
        value = top.get(key)
        return convert(option, value if value is not None else option.default)

    tls_check = get("tls_check")
    if tls_check is not None and tls_check not in (
        "starttls-smtp",
        "starttls-imap",
        "starttls-pop3",
        "tls",
    ):
        raise SettingsError(f"tls_check: {tls_check!r} is not one of starttls-smtp, tls, ...")
    key_max_age = get("key_max_age")
    if key_max_age == 0:
        raise SettingsError("key_max_age: 0 days would stage a new key on every run; use 1 or more")
    return Settings(
        zones=tuple(zones),
        hosts=get("hosts"),
        ports=get("ports"),
        proto=get("proto"),
        params=get("params"),
        verify_timeout=get("verify_timeout"),
        postfix_container=get("postfix_container"),
        postfix_reload=get("postfix_reload"),
        postfix_command=get("postfix_command"),
        dovecot_container=get("dovecot_container"),
        dovecot_reload=get("dovecot_reload"),
        dovecot_command=get("dovecot_command"),
        reload_commands=get("reload_commands"),
        docker=get("docker"),
        live_check=get("live_check"),
        live_check_timeout=get("live_check_timeout"),
        connect=get("connect"),
        tls_check=tls_check,
        log_file=get("log_file"),
        sources=tuple(raw.sources),
        mode=get("mode"),
        key_max_age=key_max_age,
        state_dir=get("state_dir"),
        resolver=get("resolver"),
        certbot=get("certbot"),
    )


def from_sources(
    *,
    config: str | None,
    overrides: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
    extra: Iterable[tuple[Mapping[str, Any], str]] = (),
) -> Settings:
    """Settings file (if any), then ``extra`` sources (e.g. a renewal config), then flags."""
    environ = os.environ if environ is None else environ
    path, required = config_path(config, environ)
    raw = RawSettings()
    if path.exists():
        load_toml(path, raw)
    elif required:
        raise SettingsError(f"settings file {path} does not exist")
    for values, source in extra:
        raw.update(values, source)
    raw.update({k: v for k, v in overrides.items() if v is not None}, "command line")
    return build(raw)
