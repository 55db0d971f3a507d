"""Running the real command line, as certbot runs a deploy hook: a separate process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def run_cli(
    *args: str | Path, env: Mapping[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ)
    full_env.pop("RENEWED_LINEAGE", None)
    full_env.pop("CERTBOT_DANE_TLSA_CONFIG", None)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "certbot_dane_tlsa", *map(str, args)],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        check=False,
    )


def toml_list(items: list[str]) -> str:
    return "[" + ", ".join(f'"{i}"' for i in items) + "]"


def write_settings(path: Path, **values: object) -> Path:
    """A TOML settings file from keyword values (str, int, bool, list of str)."""
    lines = []
    for key, value in values.items():
        if isinstance(value, bool):
            lines.append(f"{key} = {'true' if value else 'false'}")
        elif isinstance(value, int):
            lines.append(f"{key} = {value}")
        elif isinstance(value, list | tuple):
            lines.append(f"{key} = {toml_list([str(v) for v in value])}")
        else:
            lines.append(f'{key} = "{value}"')
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


def named_settings(path: Path, named: Any, zone: str = "example.test", **values: object) -> Path:
    """Settings for publishing into ``zone`` on a lab NamedServer, plus ``values``."""
    return write_settings(
        path,
        zone=zone,
        zone_file=named.zone_file(zone),
        rndc=named.rndc_argv,
        nameservers=[f"127.0.0.1:{named.port}"],
        **values,
    )
