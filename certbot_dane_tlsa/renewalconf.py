"""Reading the ``dane_tlsa_*`` settings that certbot keeps in a lineage's renewal config.

The installer route stores its settings in ``renewal/NAME.conf``; the deploy-hook route reads
them from there too, so a user who mixes both routes sets everything once. The hook must not
import certbot (nor configobj through it), and it needs only flat ``key = value`` lines of the
``[renewalparams]`` section, so this is a small reader of that subset of configobj syntax.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

PREFIX = "dane_tlsa_"


def renewal_conf_path(live_dir: Path) -> Path:
    """``<config-dir>/renewal/<name>.conf`` for ``<config-dir>/live/<name>``."""
    live_dir = Path(live_dir)
    return live_dir.parent.parent / "renewal" / f"{live_dir.name}.conf"


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    # configobj allows a trailing comment after an unquoted value.
    return value.split(" #", 1)[0].strip()


def read_renewal_params(path: Path) -> dict[str, str]:
    """The flat ``key = value`` entries of the ``[renewalparams]`` section."""
    params: dict[str, str] = {}
    section = ""
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]").strip()
            continue
        if section != "renewalparams":
            continue
        key, sep, value = line.partition("=")
        if sep:
            params[key.strip()] = _unquote(value)
    return params


# The installer's --dane-tlsa-config names a settings file; it is not itself a setting.
CONFIG_KEY = "config"


def lineage_renewal_params(live_dir: Path) -> tuple[dict[str, str], Path] | None:
    """The lineage's ``[renewalparams]`` and the file, or None when it has no renewal config."""
    path = renewal_conf_path(live_dir)
    if not path.is_file():
        return None
    try:
        return read_renewal_params(path), path
    except OSError:
        return None


def _dane_params(live_dir: Path) -> tuple[dict[str, str], Path] | None:
    found = lineage_renewal_params(live_dir)
    if found is None:
        return None
    params, path = found
    values = {
        key[len(PREFIX) :]: value
        for key, value in params.items()
        if key.startswith(PREFIX) and value not in ("", "None")
    }
    return values, path


def dane_settings(live_dir: Path) -> tuple[dict[str, Any], str] | None:
    """The lineage's ``dane_tlsa_*`` settings as raw values, with the file they came from."""
    found = _dane_params(live_dir)
    if found is None:
        return None
    values = {k: v for k, v in found[0].items() if k != CONFIG_KEY}
    return (values, str(found[1])) if values else None


def dane_config_file(live_dir: Path) -> str | None:
    """The settings file saved by ``--dane-tlsa-config``, if the lineage has one."""
    found = _dane_params(live_dir)
    return found[0].get(CONFIG_KEY) if found else None
