"""Plain value types shared by every stage: TLSA parameters, TLSA records, owner names.

They carry no I/O and no policy, so the zone editor, the DNS verifier and the live check can
all compare records by value (the wire form of their RDATA) rather than by text.
"""

from __future__ import annotations

import re

from certbot_dane_tlsa.dnsname import Name
from certbot_dane_tlsa.errors import SettingsError
from certbot_dane_tlsa.lite_dataclasses import dataclass

USAGES = {0: "PKIX-TA", 1: "PKIX-EE", 2: "DANE-TA", 3: "DANE-EE"}
SELECTORS = {0: "Cert", 1: "SPKI"}
MATCHING_TYPES = {0: "Full", 1: "SHA2-256", 2: "SHA2-512"}
DIGEST_SIZES = {1: 32, 2: 64}
_PARAMS_RE = re.compile(r"^\s*(\d+)\s+(\d+)\s+(\d+)\s*$")
_PROTO_RE = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,14}$")


@dataclass(frozen=True, order=True)
class TlsaParams:
    """A (usage, selector, matching type) triple such as ``3 1 1``."""

    usage: int
    selector: int
    mtype: int

    @classmethod
    def parse(cls, text: str) -> TlsaParams:
        match = _PARAMS_RE.match(text)
        if not match:
            raise SettingsError(f"TLSA parameters {text!r} are not three numbers like '3 1 1'")
        params = cls(*(int(g) for g in match.groups()))
        if params.usage not in USAGES:
            raise SettingsError(f"TLSA usage {params.usage} is not one of 0, 1, 2, 3")
        if params.selector not in SELECTORS:
            raise SettingsError(f"TLSA selector {params.selector} is not one of 0, 1")
        if params.mtype not in MATCHING_TYPES:
            raise SettingsError(f"TLSA matching type {params.mtype} is not one of 0, 1, 2")
        return params

    def __str__(self) -> str:
        return f"{self.usage} {self.selector} {self.mtype}"


@dataclass(frozen=True, order=True)
class TlsaRecord:
    """One TLSA RDATA. Equality is equality of the wire form."""

    usage: int
    selector: int
    mtype: int
    data: bytes

    @property
    def params(self) -> TlsaParams:
        return TlsaParams(self.usage, self.selector, self.mtype)

    def to_text(self) -> str:
        """Presentation form as written to zone files: ``3 1 1 <lower-case hex>``."""
        return f"{self.usage} {self.selector} {self.mtype} {self.data.hex()}"

    def __str__(self) -> str:
        return self.to_text()

    @classmethod
    def from_text(cls, text: str) -> TlsaRecord:
        """Parse ``U S M HEX...`` (hex may be split by white space)."""
        parts = text.split()
        if len(parts) < 4:
            raise ValueError(f"TLSA data {text!r} needs usage, selector, matching type and data")
        try:
            usage, selector, mtype = (int(p) for p in parts[:3])
            data = bytes.fromhex("".join(parts[3:]))
        except ValueError as exc:
            raise ValueError(f"TLSA data {text!r} is not valid: {exc}") from None
        if not all(0 <= v <= 255 for v in (usage, selector, mtype)):
            raise ValueError(f"TLSA data {text!r} has a field outside 0-255")
        return cls(usage, selector, mtype, data)

    def looks_well_formed(self) -> bool:
        """Whether the data length fits the matching type (a digest has a fixed size)."""
        size = DIGEST_SIZES.get(self.mtype)
        return bool(self.data) and (size is None or len(self.data) == size)


def tlsa_owner(host: Name, port: int, proto: str = "tcp") -> Name:
    """``_PORT._PROTO.HOST`` (RFC 6698 section 3)."""
    if not 0 < port < 65536:
        raise SettingsError(f"port {port} is not between 1 and 65535")
    if not _PROTO_RE.match(proto):
        raise SettingsError(f"proto {proto!r} is not a transport label such as 'tcp'")
    return Name((f"_{port}".encode(), f"_{proto.lower()}".encode())).concatenate(host)
