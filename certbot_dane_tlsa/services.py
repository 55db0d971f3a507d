"""Reloading the services that use the certificate, after DNS is published and verified.

The order matters: a reload is what makes a new key go live, so it comes only once the
records that vouch for that key are served. In Docker the reload runs inside the container
through the user's Docker CLI prefix, so podman, a remote context or sudo all work alike.
"""

from __future__ import annotations

import logging

from certbot_dane_tlsa.lite_dataclasses import dataclass
from certbot_dane_tlsa.runner import describe, run
from certbot_dane_tlsa.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reload:
    what: str
    argv: tuple[str, ...]


def planned_reloads(settings: Settings) -> list[Reload]:
    reloads: list[Reload] = []
    postfix = (*settings.postfix_command, "reload")
    if settings.postfix_container:
        reloads.append(
            Reload(
                f"reload Postfix in container {settings.postfix_container}",
                (*settings.docker, "exec", settings.postfix_container, *postfix),
            )
        )
    elif settings.postfix_reload:
        reloads.append(Reload("reload Postfix", postfix))
    doveadm = (*settings.dovecot_command, "reload")
    if settings.dovecot_container:
        reloads.append(
            Reload(
                f"reload Dovecot in container {settings.dovecot_container}",
                (*settings.docker, "exec", settings.dovecot_container, *doveadm),
            )
        )
    elif settings.dovecot_reload:
        reloads.append(Reload("reload Dovecot", doveadm))
    for argv in settings.reload_commands:
        reloads.append(Reload(f"run {describe(argv)}", argv))
    return reloads


def run_reloads(reloads: list[Reload]) -> None:
    for reload in reloads:
        result = run(reload.argv, what=reload.what)
        log.info("%s: %s", reload.what, result.last_line or "done")
