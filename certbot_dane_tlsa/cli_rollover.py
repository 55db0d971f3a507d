"""The `rollover stage|commit` and `prune` commands.

They find the lineage the way certbot does (``--cert-name`` plus certbot's own directory
flags and defaults), so a user types the same words as for ``certbot renew``, and they take
their settings from the lineage's renewal config (``dane_tlsa_*``) or ``--config``. Like the
rest of the command line they must not import certbot: ``commit`` runs certbot as a separate
process, never inside it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from certbot_dane_tlsa.errors import SettingsError
from certbot_dane_tlsa.settings import Settings

if TYPE_CHECKING:
    from certbot_dane_tlsa.rollover import CertbotDirs

_DIRS = (
    ("--config-dir", "/etc/letsencrypt", "certbot's configuration directory"),
    ("--work-dir", "/var/lib/letsencrypt", "certbot's working directory"),
    ("--logs-dir", "/var/log/letsencrypt", "certbot's log directory"),
)


def _add_lineage_args(parser: argparse.ArgumentParser, settings_flags: bool) -> None:
    from certbot_dane_tlsa import cli

    parser.add_argument("--cert-name", required=True, metavar="NAME", help="the lineage's name")
    for flag, default, what in _DIRS:
        parser.add_argument(flag, default=default, metavar="DIR", help=f"{what} ({default})")
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="settings file (default: the lineage's renewal config, $CERTBOT_DANE_TLSA_CONFIG "
        "or /etc/letsencrypt/dane-tlsa.toml)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every command's output")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")
    cli._add_setting_flags(parser, settings_flags)


def add_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], command: str | None = None
) -> None:
    """Add ``rollover`` (with ``stage`` and ``commit``) and ``prune`` to the command line.

    ``command`` is the command this run invokes (None: all), as in ``cli.build_parser``.
    """
    rollover_flags = command in (None, "rollover")
    rollover = subparsers.add_parser(
        "rollover",
        help="change the key without a DANE failure window: stage, then commit",
        description="Stage a next key and publish its TLSA records beside the current ones; "
        "commit it once every cache has seen them (2 x TTL).",
    )
    steps = rollover.add_subparsers(dest="rollover_command", required=True, metavar="STEP")
    stage = steps.add_parser(
        "stage",
        help="generate the next key and publish its records beside the current ones",
    )
    _add_lineage_args(stage, rollover_flags)
    stage.add_argument("--key-type", choices=("rsa", "ecdsa"), help="default: as the current key")
    stage.add_argument("--rsa-key-size", type=int, metavar="BITS", help="2048, 3072 or 4096")
    stage.add_argument(
        "--elliptic-curve", metavar="CURVE", help="secp256r1, secp384r1 or secp521r1"
    )
    commit = steps.add_parser(
        "commit",
        help="have certbot issue the certificate for the staged key once that is safe",
        description="Refuses (exit 75, nothing changed) until the next key's records have "
        "been served long enough; then runs certbot renew with the staged key, deploys, "
        "reloads and checks the live server.",
    )
    _add_lineage_args(commit, rollover_flags)
    commit.add_argument(
        "--if-safe",
        action="store_true",
        help="for timers: exit 0 without doing anything when nothing is staged or it is too early",
    )
    prune = subparsers.add_parser(
        "prune",
        help="remove the records of retired keys once that is safe (2 x TTL after going live)",
    )
    _add_lineage_args(prune, command in (None, "prune"))


def _prepare(args: argparse.Namespace) -> tuple[Settings, Path]:
    from certbot_dane_tlsa import cli

    name = args.cert_name
    if not name or "/" in name or name in (".", ".."):
        raise SettingsError(f"--cert-name: {name!r} is not a lineage name")
    live = Path(args.config_dir) / "live" / name
    if not live.is_dir():
        raise SettingsError(
            f"no lineage {name!r} in {args.config_dir}/live (pass certbot's --config-dir)"
        )
    args.lineage = str(live)
    settings: Settings = cli._settings(args)
    return settings, live


def _dirs(args: argparse.Namespace) -> CertbotDirs:
    from certbot_dane_tlsa.rollover import CertbotDirs

    return CertbotDirs(
        Path(os.path.abspath(args.config_dir)),
        Path(os.path.abspath(args.work_dir)),
        Path(os.path.abspath(args.logs_dir)),
    )


def cmd_rollover(args: argparse.Namespace) -> int:
    from certbot_dane_tlsa import rollover

    settings, live = _prepare(args)
    if args.rollover_command == "stage":
        result = rollover.stage(
            settings,
            live,
            out=sys.stdout,
            key_type=args.key_type,
            rsa_key_size=args.rsa_key_size,
            elliptic_curve=args.elliptic_curve,
        )
    else:
        result = rollover.commit(
            settings,
            live,
            _dirs(args),
            out=sys.stdout,
            if_safe=args.if_safe,
        )
    for line in result.lines[-1:]:
        sys.stdout.write(line + "\n")
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    from certbot_dane_tlsa import rollover

    settings, live = _prepare(args)
    result = rollover.prune(settings, live, out=sys.stdout)
    for line in result.lines:
        sys.stdout.write(line + "\n")
    return 0
