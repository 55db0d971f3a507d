"""Domain names as the deploy path needs them, without importing dnspython.

The deploy hook starts a fresh interpreter on every renewal, and ``dns.name`` costs about
30 ms there (it probes installed package metadata at import). Everything between the settings
and the zone file only needs to parse master-file names, compare them and print them, so this
module does that much and no more. It follows the master-file rules (RFC 1035 section 5.1:
``\\X`` and ``\\DDD`` escapes, ``@``, relative names completed by the origin) and the limits
of RFC 1035 section 2.3.4, and it parses and prints exactly as dnspython does, which the unit
tests check name by name. Code that talks DNS on the wire converts with :func:`to_dnspython`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import dns.name

# Characters that have a meaning in master files and are escaped when printed.
_SPECIAL = frozenset(b'"().;\\@$')
_MAX_LABEL = 63
_MAX_NAME = 255


class BadName(ValueError):
    """A name that cannot be a domain name (bad escape, empty or over-long label)."""


class Name:
    """A domain name: a tuple of labels, absolute when the last one is the empty root label.

    Labels keep the case they were written in; equality and hashing ignore ASCII case, as DNS
    does (RFC 4343), so a name can be used as a dictionary key for its owner.
    """

    __slots__ = ("_folded", "labels")

    labels: tuple[bytes, ...]
    _folded: tuple[bytes, ...]

    def __init__(self, labels: Iterable[bytes]) -> None:
        labels = tuple(labels)
        total = 0
        for position, label in enumerate(labels):
            if len(label) > _MAX_LABEL:
                raise BadName(f"label {_escape(label)[:20]}... is longer than 63 octets")
            if not label and position != len(labels) - 1:
                raise BadName("empty label")
            total += len(label) + 1
        if total > _MAX_NAME:
            raise BadName("name is longer than 255 octets")
        self.labels = labels
        self._folded = tuple(label.lower() for label in labels)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Name) and self._folded == other._folded

    def __hash__(self) -> int:
        return hash(self._folded)

    def __lt__(self, other: Name) -> bool:
        # DNSSEC canonical order (RFC 4034 section 6.1): compare from the root label down.
        return self._folded[::-1] < other._folded[::-1]

    def __gt__(self, other: Name) -> bool:
        return other < self

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        return f"<Name {self.to_text()}>"

    def __str__(self) -> str:
        return self.to_text()

    def is_absolute(self) -> bool:
        return bool(self.labels) and not self.labels[-1]

    def is_subdomain(self, other: Name) -> bool:
        """Whether this name is ``other`` or below it (names of different kinds never are)."""
        if self.is_absolute() != other.is_absolute():
            return False
        size = len(other._folded)
        return size <= len(self._folded) and self._folded[len(self._folded) - size :] == (
            other._folded
        )

    def relativize(self, origin: Name) -> Name:
        """This name without ``origin`` at its end; unchanged when it is not below ``origin``."""
        if not self.is_subdomain(origin):
            return self
        return Name(self.labels[: len(self.labels) - len(origin.labels)])

    def concatenate(self, other: Name) -> Name:
        if self.is_absolute() and other.labels:
            raise BadName(f"cannot append {other} to the absolute name {self}")
        return Name(self.labels + other.labels)

    def to_text(self, omit_final_dot: bool = False) -> str:
        """Master-file text: ``@`` for the empty relative name, ``.`` for the root."""
        if not self.labels:
            return "@"
        if self.labels == (b"",):
            return "."
        labels = self.labels[:-1] if omit_final_dot and self.is_absolute() else self.labels
        return ".".join(_escape(label) for label in labels)


def _escape(label: bytes) -> str:
    # Printable ASCII as is, master-file specials with a backslash, the rest as \DDD.
    out: list[str] = []
    for byte in label:
        if byte in _SPECIAL:
            out.append("\\" + chr(byte))
        elif 0x20 < byte < 0x7F:
            out.append(chr(byte))
        else:
            out.append(f"\\{byte:03d}")
    return "".join(out)


root = Name((b"",))
empty = Name(())


def from_text(text: str | bytes, origin: Name | None = root) -> Name:
    """Parse a master-file name; a relative one is completed with ``origin`` (unless None).

    Text is taken as ASCII: internationalised names must be given in their ``xn--`` form, as
    they appear in zone files and certificates.
    """
    if isinstance(text, str):
        try:
            text = text.encode("ascii")
        except UnicodeEncodeError:
            raise BadName(f"{text!r} is not ASCII; use the xn-- form") from None
    if text == b".":
        return root
    labels: list[bytes] = []
    if text and text != b"@":
        labels = _split(text)
    if (not labels or labels[-1]) and origin is not None:
        labels.extend(origin.labels)
    return Name(labels)


def _split(text: bytes) -> list[bytes]:
    """Labels of a non-empty name; an absolute name ends with the empty root label."""
    labels: list[bytes] = []
    label = bytearray()
    i, size = 0, len(text)
    while i < size:
        byte = text[i]
        i += 1
        if byte == 0x2E:  # "."
            if not label:
                raise BadName("empty label")
            labels.append(bytes(label))
            label = bytearray()
        elif byte != 0x5C:  # not "\"
            label.append(byte)
        elif i >= size:
            raise BadName("the name ends inside an escape")
        elif not 0x30 <= text[i] <= 0x39:
            label.append(text[i])
            i += 1
        else:
            digits = text[i : i + 3]
            if len(digits) != 3 or not digits.isdigit() or int(digits) > 255:
                raise BadName(f"bad escape \\{digits.decode('ascii', 'replace')}")
            label.append(int(digits))
            i += 3
    labels.append(bytes(label))  # an empty last label is the root: the name was absolute
    return labels


def to_dnspython(name: Name) -> dns.name.Name:
    """The same name for code that talks DNS on the wire with dnspython."""
    import dns.name

    return dns.name.Name(name.labels)


def from_dnspython(name: dns.name.Name) -> Name:
    return Name(name.labels)
