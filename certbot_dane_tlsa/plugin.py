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

In rollover mode (the default) the key must survive renewals, so the plugin sets
``reuse_key = True`` in the lineage's renewal config when it is attached and puts it back in
``generic_updates`` when it went missing. Only the plugin edits that file: certbot holds its
lock while plugins run, so nobody else writes it at the same moment. ``generic_updates`` also
stages a next key when ``key_max_age`` says so; the commit cannot happen here (it runs
certbot), it comes from ``certbot-dane-tlsa rollover commit --if-safe`` on a timer.
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
            self._enforce_reuse_key(live_dir, repair=False)

    # --- renewal hooks ----------------------------------------------------------------

    def renew_deploy(self, lineage: Any, *args: Any, **kwargs: Any) -> None:
        # restart() follows; it finds nothing pending and so does not publish twice.
        self._publish(Path(lineage.cert_path).parent, reload_unchanged=True)

    def generic_updates(self, lineage: Any, *args: Any, **kwargs: Any) -> None:
        live_dir = Path(lineage.cert_path).parent
        self._enforce_reuse_key(live_dir, repair=True)
        if not self._stage_if_old(live_dir):
            self._publish(live_dir, reload_unchanged=False)

    # --- rollover mode ------------------------------------------------------------------

    def _enforce_reuse_key(self, live_dir: Path, *, repair: bool) -> None:
        """Rollover mode needs ``reuse_key = True``; set it, or put it back with a warning."""
        from certbot_dane_tlsa.renewalconf import renewal_conf_path

        settings = self._settings()
        if settings.mode != "rollover":
            return
        path = renewal_conf_path(live_dir)
        if not path.is_file():
            logger.warning("dane-tlsa: %s is missing; cannot make renewals reuse the key", path)
            return
        changed = _set_reuse_key(path)
        if changed and repair:
            logger.warning(
                "dane-tlsa: %s had lost reuse_key = True; put it back, because a new key at "
                "renewal breaks DANE for up to 2 x TTL (use 'certbot-dane-tlsa rollover' to "
                "change keys, or set dane_tlsa_mode = replace to accept the risk)",
                path,
            )
        elif changed:
            logger.info("dane-tlsa: set reuse_key = True in %s", path)
        self._warn_key_shape_drift(live_dir, path)

    def _warn_key_shape_drift(self, live_dir: Path, path: Path) -> None:
        """A renewal config whose key_type differs from the key has drifted (certbot #9635)."""
        from certbot_dane_tlsa.errors import DaneError
        from certbot_dane_tlsa.keygen import shape_of
        from certbot_dane_tlsa.lineage import Lineage
        from certbot_dane_tlsa.renewalconf import read_renewal_params

        try:
            shape = shape_of(Lineage.from_dir(live_dir).material().leaf.spki)
            params = read_renewal_params(path)
        except (DaneError, OSError) as exc:
            logger.debug("dane-tlsa: cannot compare key shapes: %s", exc)
            return
        wanted = params.get("key_type", "").strip().lower()
        size = params.get("rsa_key_size", "").strip()
        curve = params.get("elliptic_curve", "").strip().lower()
        drift = (
            (wanted and wanted != shape.key_type)
            or (shape.key_type == "rsa" and size and size != str(shape.key_size))
            or (shape.key_type == "ecdsa" and curve and curve != shape.curve)
        )
        if drift:
            logger.warning(
                "dane-tlsa: %s asks for key_type %s but the certificate's key is %s: the key "
                "type or size changed or is about to; change keys only with a rollover",
                path,
                wanted or "(default)",
                shape,
            )

    def _stage_if_old(self, live_dir: Path) -> bool:
        """Stage a next key when the current one is older than key_max_age; True if done."""
        from certbot_dane_tlsa.errors import DaneError
        from certbot_dane_tlsa.keystate import utcnow
        from certbot_dane_tlsa.lineage import Lineage
        from certbot_dane_tlsa.rollover import key_age, stage, state_store

        settings = self._settings()
        if settings.mode != "rollover" or settings.key_max_age is None:
            return False
        try:
            lineage = Lineage.from_dir(live_dir)
            age = key_age(lineage, utcnow())
            state = state_store(settings, live_dir).load()
            if age.days < settings.key_max_age or (state is not None and state.next is not None):
                return False
            logger.info(
                "dane-tlsa: the key of %s is %d days old (key_max_age %d): staging the next key",
                live_dir.name,
                age.days,
                settings.key_max_age,
            )
            stage(settings, live_dir, out=io.StringIO())
        except (DaneError, OSError) as exc:
            raise errors.PluginError(f"dane-tlsa: {live_dir.name}: staging: {exc}") from exc
        logger.warning(
            "dane-tlsa: a next key for %s is staged; 'certbot-dane-tlsa rollover commit "
            "--if-safe --cert-name %s' (from a timer) puts it into use once it is safe",
            live_dir.name,
            live_dir.name,
        )
        return True

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


def _set_reuse_key(path: Path) -> bool:
    """Make ``[renewalparams] reuse_key = True``; False when it already was. Atomic write."""
    import configobj

    from certbot_dane_tlsa.atomicfile import write_atomically

    conf = configobj.ConfigObj(str(path), encoding="utf-8", default_encoding="utf-8")
    params = conf.setdefault("renewalparams", {})
    if str(params.get("reuse_key", "")).strip().lower() == "true":
        return False
    params["reuse_key"] = "True"
    buffer = io.BytesIO()
    conf.write(buffer)
    write_atomically(path, buffer.getvalue(), path.stat().st_mode & 0o7777)
    return True
