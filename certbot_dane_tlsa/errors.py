"""The errors the tool reports to its user.

Every failure the user can do something about is a :class:`DaneError` whose message is one
line that names the thing at fault (a file and line, a setting, a command) and what was
expected. The command line prints that line and exits non-zero; nothing else is shown unless
the log asks for more.
"""

from __future__ import annotations


class DaneError(Exception):
    """A failure with a one-line, user-facing explanation."""

    exit_code = 1


class SettingsError(DaneError):
    """A setting is missing, malformed or contradicts another one."""


class CertificateError(DaneError):
    """The certificate or key material cannot be used to derive records."""


class ZoneSyntaxError(DaneError):
    """The zone file cannot be read as an RFC 1035 master file."""

    def __init__(self, path: str, line: int, message: str) -> None:
        self.path = path
        self.line = line
        self.reason = message
        super().__init__(f"{path}:{line}: {message}")


class ZoneError(DaneError):
    """The zone cannot be edited as asked (no SOA, owner outside the zone, ...)."""


class CommandError(DaneError):
    """An external program (rndc, named-checkzone, docker, postfix) failed."""


class VerificationError(DaneError):
    """What the servers serve, or what the live server presents, is not what was published."""
