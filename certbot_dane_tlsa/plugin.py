"""The certbot installer plugin ``dane-tlsa``: a thin door into the same pipeline.

Certbot imports every installed plugin on every run and an import error stops certbot
entirely, so this module imports only what certbot has already imported itself and defers
everything else to the moment a method runs. Its options are generated from the settings
table, so ``--dane-tlsa-zone-file`` is the ``zone_file`` key with the same checks.

Certbot calls different methods on different routes; all of them end in :meth:`_publish`:

- ``run``/``install``: ``deploy_cert`` for each name (we note the lineage), then ``restart``;
- ``certonly -i dane-tlsa``: only ``restart`` (we find the lineage from the command line);
- ``renew``: ``renew_deploy(lineage)`` after a real renewal, then ``restart``;
  ``generic_updates(lineage)`` on every run, due or not: reconcile DNS with the certificate.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from certbot import errors, interfaces
from certbot.plugins import common

logger = logging.getLogger(__name__)


class Installer(
    common.Plugin, interfaces.Installer, interfaces.RenewDeployer, interfaces.GenericUpdater
):
    """Publish DANE TLSA records for the certificate in a BIND zone."""

    description = "Publish DANE TLSA records for the certificate in a BIND zone (and reload mail)"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending: dict[Path, None] = {}
        self._published: set[Path] = set()

    @classmethod
    def add_parser_arguments(cls, add: Callable[..., None]) -> None:
        from certbot_dane_tlsa.settings import OPTIONS

        add("config", default=None, help="certbot-dane-tlsa settings file (TOML) to read as well")
        for option in OPTIONS:
            extra = f" (one of: {', '.join(option.choices)})" if option.choices else ""
            add(option.key.replace("_", "-"), default=None, help=option.help + extra)

    # --- certbot's Installer interface ---------------------------------------------------

    def prepare(self) -> None:
        """Check the settings early, before certbot talks to the CA."""
        self._settings()

    def more_info(self) -> str:
        return (
            "Derives DANE TLSA records (3 1 1 by default) from the certificate, edits the BIND "
            "zone safely, reloads it and the mail server, and verifies what DNS and the live "
            "server present."
        )

    def get_all_names(self) -> list[str]:
        return []

    def deploy_cert(
        self, domain: str, cert_path: str, key_path: str, chain_path: str, fullchain_path: str
    ) -> None:
        self._pending[Path(cert_path).parent] = None

    def enhance(self, domain: str, enhancement: str, options: Any = None) -> None:
        raise errors.PluginError(f"dane-tlsa does not support the {enhancement} enhancement")

    def supported_enhancements(self) -> list[str]:
        return []

    def save(self, title: str | None = None, temporary: bool = False) -> None:
        """Nothing to checkpoint: every zone edit is atomic and rolls itself back."""

    def rollback_checkpoints(self, rollback: int = 1) -> None:
        """See :meth:`save`."""

    def recovery_routine(self) -> None:
        """See :meth:`save`."""

    def config_test(self) -> None:
        self._settings()

    def restart(self) -> None:
        lineages = list(self._pending)
        if not lineages and not self._published:
            lineages = self._lineages_from_command_line()
        self._pending.clear()
        for live_dir in lineages:
            self._publish(live_dir, reload_unchanged=True)

    # --- renewal hooks ----------------------------------------------------------------

    def renew_deploy(self, lineage: Any, *args: Any, **kwargs: Any) -> None:
        # restart() follows; it finds nothing pending and so does not publish twice.
        self._publish(Path(lineage.cert_path).parent, reload_unchanged=True)

    def generic_updates(self, lineage: Any, *args: Any, **kwargs: Any) -> None:
        self._publish(Path(lineage.cert_path).parent, reload_unchanged=False)

    # --- the door into the pipeline -----------------------------------------------------

    def _raw_options(self) -> dict[str, Any]:
        from certbot_dane_tlsa.settings import OPTIONS

        values = {}
        for option in OPTIONS:
            value = self.conf(option.key.replace("_", "-"))
            if value is not None:
                values[option.key] = value
        return values

    def _settings(self) -> Any:
        from certbot_dane_tlsa import settings
        from certbot_dane_tlsa.errors import DaneError

        try:
            return settings.from_sources(
                config=self.conf("config"),
                overrides={},
                extra=[(self._raw_options(), "certbot --dane-tlsa-* options")],
            )
        except DaneError as exc:
            raise errors.PluginError(f"dane-tlsa: {exc}") from exc

    def _publish(self, live_dir: Path, *, reload_unchanged: bool) -> None:
        from certbot_dane_tlsa.errors import DaneError
        from certbot_dane_tlsa.pipeline import deploy

        settings = self._settings()
        out = io.StringIO()
        try:
            deploy(settings, live_dir, dry_run=False, out=out, reload_unchanged=reload_unchanged)
        except DaneError as exc:
            raise errors.PluginError(f"dane-tlsa: {live_dir.name}: {exc}") from exc
        self._published.add(live_dir)
        logger.info("dane-tlsa: TLSA records for %s are published and verified", live_dir.name)

    def _lineages_from_command_line(self) -> list[Path]:
        """``certonly -i dane-tlsa`` calls only restart(): find the lineage it just saved."""
        live_root = Path(self.config.live_dir)
        certname = getattr(self.config, "certname", None)
        if certname:
            return [live_root / certname]
        from certbot_dane_tlsa.errors import DaneError
        from certbot_dane_tlsa.lineage import Lineage

        # certbot 5 hands out SAN objects (DNSName, IPAddress); older versions plain strings.
        wanted = {str(d).lower() for d in (getattr(self.config, "domains", None) or [])}
        best: tuple[float, Path] | None = None
        for candidate in live_root.iterdir() if live_root.is_dir() else []:
            cert = candidate / "cert.pem"
            if not cert.exists():
                continue
            try:
                names = set(Lineage.from_dir(candidate).names())
            except (DaneError, OSError, ValueError) as exc:
                logger.debug("dane-tlsa: skipping %s: %s", candidate, exc)
                continue
            if names == wanted:
                mtime = cert.stat().st_mtime
                if best is None or mtime > best[0]:
                    best = (mtime, candidate)
        if best is None:
            raise errors.PluginError(f"dane-tlsa: found no lineage for {', '.join(sorted(wanted))}")
        return [best[1]]
