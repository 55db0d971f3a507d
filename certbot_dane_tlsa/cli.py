"""The `certbot-dane-tlsa` command: deploy, record and check.

This is the deploy hook's entry point, so it must start fast and must not import certbot
(certbot holds its lock while hooks run, and a hook that imports it pays for it on every
renewal). Errors end as one line on stderr and a non-zero exit; the steps before it are logged
one line each.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from certbot_dane_tlsa import __version__
from certbot_dane_tlsa.cli_rollover import add_commands, cmd_prune, cmd_rollover
from certbot_dane_tlsa.errors import DaneError, SettingsError
from certbot_dane_tlsa.settings import OPTIONS

log = logging.getLogger("certbot_dane_tlsa")

PROG = "certbot-dane-tlsa"


def _add_setting_flags(parser: argparse.ArgumentParser, wanted: bool = True) -> None:
    """One flag per setting, on commands that read settings.

    ``wanted`` is False for a command this run does not invoke: the flags would only be
    parsed and thrown away, and building them all for every command costs the deploy hook
    several milliseconds on each renewal.
    """
    if not wanted:
        return
    group = parser.add_argument_group(
        "settings", "Each overrides the key of the same name in the settings file."
    )
    for option in OPTIONS:
        group.add_argument(
            option.flag, dest=f"set_{option.key}", metavar=option.metavar, help=option.help
        )


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="settings file (default: $CERTBOT_DANE_TLSA_CONFIG or the file in /etc/letsencrypt)",
    )
    parser.add_argument(
        "--lineage",
        metavar="DIR",
        help="certbot live directory of the certificate (default: $RENEWED_LINEAGE)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every command's output")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with ``command``, the settings flags only where it needs them."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Keep DANE TLSA records in BIND zones true to certbot certificates.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    deploy = commands.add_parser(
        "deploy",
        help="publish and verify the TLSA records for a lineage (certbot deploy hook)",
        description="Publish the TLSA records for a renewed lineage, reload BIND and the "
        "services, and verify what DNS and the live server present.",
    )
    _add_common(deploy)
    deploy.add_argument(
        "--dry-run",
        action="store_true",
        help="print the zone diff and the commands that would run; change nothing",
    )
    _add_setting_flags(deploy, command in (None, "deploy"))

    check = commands.add_parser(
        "check",
        help="compare DNS and the live server with the certificate (0 ok, 2 mismatch, 1 error)",
    )
    _add_common(check)
    check.add_argument("--json", action="store_true", help="print the findings as JSON")
    _add_setting_flags(check, command in (None, "check"))

    demo = commands.add_parser(
        "demo",
        help="run the whole job on a throwaway BIND, Pebble, certbot and Postfix on loopback",
    )
    demo.add_argument("--workdir", metavar="DIR", help="where to make the lab's directory")
    demo.add_argument("--keep", action="store_true", help="keep the lab's directory afterwards")

    record = commands.add_parser("record", help="print zone-file TLSA lines for a certificate")
    source = record.add_mutually_exclusive_group(required=True)
    source.add_argument("--cert", metavar="FILE", help="certificate or fullchain PEM file")
    source.add_argument("--key", metavar="FILE", help="private or public key PEM file")
    record.add_argument("--params", default="3 1 1", help="TLSA parameter triples, comma-separated")
    record.add_argument("--host", default="mail.example.com", help="host name (owner)")
    record.add_argument("--port", default="25", help="ports, comma-separated")
    record.add_argument("--proto", default="tcp")
    record.add_argument("--ttl", default=None, help="TTL to write (default: none)")
    add_commands(commands, command)
    return parser


class _StderrFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        prefix = "" if record.levelno < logging.WARNING else record.levelname.lower() + ": "
        return f"{PROG}: {prefix}{record.getMessage()}"


def _setup_logging(args: argparse.Namespace) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_StderrFormatter())
    log.handlers[:] = [handler]
    log.propagate = False
    level = logging.INFO
    if getattr(args, "verbose", False):
        level = logging.DEBUG
    elif getattr(args, "quiet", False):
        level = logging.WARNING
    log.setLevel(level)


def _add_log_file(path: Path) -> None:
    try:
        handler = logging.FileHandler(path, encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"log_file: cannot open {path}: {exc.strerror}") from None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)


def _settings(args: argparse.Namespace) -> Any:
    from certbot_dane_tlsa import settings

    overrides = {
        key[4:]: value for key, value in vars(args).items() if key.startswith("set_") and value
    }
    extra = []
    config = args.config
    lineage = _lineage_dir(args, required=False)
    if lineage is not None:
        from certbot_dane_tlsa.renewalconf import dane_config_file, dane_settings

        found = dane_settings(lineage)
        if found:
            extra.append(found)
        config = config or dane_config_file(lineage)
    result = settings.from_sources(config=config, overrides=overrides, extra=extra)
    if result.log_file is not None:
        _add_log_file(result.log_file)
    return result


def _lineage_dir(args: argparse.Namespace, *, required: bool = True) -> Path | None:
    text = args.lineage or os.environ.get("RENEWED_LINEAGE")
    if not text:
        if required:
            raise SettingsError(
                "no lineage: pass --lineage /etc/letsencrypt/live/NAME "
                "or run as a certbot deploy hook (RENEWED_LINEAGE)"
            )
        return None
    return Path(text)


def _cmd_deploy(args: argparse.Namespace) -> int:
    from certbot_dane_tlsa.hookenv import started_by_certbot_dry_run
    from certbot_dane_tlsa.pipeline import deploy

    if not args.dry_run and started_by_certbot_dry_run():
        log.info("certbot is doing a dry run, so this is one too: nothing will be changed")
        args.dry_run = True
    settings = _settings(args)
    lineage = _lineage_dir(args)
    assert lineage is not None
    report = deploy(settings, lineage, dry_run=args.dry_run, out=sys.stdout)
    if args.dry_run:
        log.info("dry run: nothing was changed")
    elif any(o.changed for o in report.outcomes):
        log.info("TLSA records published%s", " and verified" if report.verified else "")
    else:
        log.info("TLSA records were already right%s", " and are served" if report.verified else "")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from certbot_dane_tlsa.pipeline import check

    settings = _settings(args)
    lineage = _lineage_dir(args)
    assert lineage is not None
    report = check(settings, lineage)
    if args.json:
        sys.stdout.write(report.to_json() + "\n")
    else:
        for finding in report.findings:
            log.info("%s: %s %s: %s", finding.status, finding.owner, finding.where, finding.detail)
        sys.stdout.write(report.summary() + "\n")
    return report.exit_code


def _cmd_record(args: argparse.Namespace) -> int:
    from certbot_dane_tlsa.records import TlsaParams, tlsa_owner
    from certbot_dane_tlsa.settings import parse_name, parse_ttl
    from certbot_dane_tlsa.tlsa import (
        derive,
        derive_from_public_key,
        load_material,
        load_public_key,
        params_warnings,
        record_lines,
    )

    params = [TlsaParams.parse(p) for p in args.params.split(",") if p.strip()]
    ports = [int(p) for p in args.port.split(",") if p.strip().isdigit()]
    if not ports or len(ports) != len([p for p in args.port.split(",") if p.strip()]):
        raise SettingsError(f"--port: {args.port!r} is not a comma-separated list of ports")
    host = parse_name(args.host, "--host")
    ttl = parse_ttl(args.ttl, "--ttl") if args.ttl is not None else None
    if args.cert:
        material = load_material(Path(args.cert))
        records = [derive(material, p) for p in params]
    else:
        public_key = load_public_key(Path(args.key))
        records = [derive_from_public_key(public_key, p) for p in params]
    for port in ports:
        for p in params:
            for warning in params_warnings(p, port):
                log.warning("%s", warning)
    pairs = [(tlsa_owner(host, port, args.proto), r) for port in ports for r in records]
    for line in record_lines(pairs, ttl=ttl):
        sys.stdout.write(line + "\n")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from certbot_dane_tlsa.demo import DemoError, run_demo

    try:
        return run_demo(
            sys.stdout, workdir=Path(args.workdir) if args.workdir else None, keep=args.keep
        )
    except DemoError as exc:
        raise DaneError(f"demo: {exc}") from exc


COMMANDS = {"deploy": _cmd_deploy, "check": _cmd_check, "record": _cmd_record, "demo": _cmd_demo}
COMMANDS.update({"rollover": cmd_rollover, "prune": cmd_prune})


def _requested_command(argv: Sequence[str]) -> str | None:
    # The top level takes no option with a value, so the first word is the command.
    return next((word for word in argv if not word.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv and os.environ.get("RENEWED_LINEAGE"):
        # Certbot runs the executables in renewal-hooks/deploy/ without arguments: a link to
        # this command there means `deploy`.
        argv = ["deploy"]
    args = build_parser(_requested_command(argv)).parse_args(argv)
    _setup_logging(args)
    try:
        return COMMANDS[args.command](args)
    except DaneError as exc:
        log.error("%s", exc)
        return exc.exit_code
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
