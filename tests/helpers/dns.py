"""What a real named serves, read back the way a validating sender would see it."""

from __future__ import annotations

import hashlib
from typing import Any

import dns.rdatatype
from cryptography import x509
from cryptography.hazmat.primitives import serialization


def served_tlsa(named: Any, owner: str) -> tuple[set[str], bool]:
    """("U S M hex" of each TLSA record named serves at ``owner``, whether an RRSIG covers them)."""
    response = named.query(owner, "TLSA")
    records: set[str] = set()
    signed = False
    for rrset in response.answer:
        if rrset.rdtype == dns.rdatatype.TLSA:
            records |= {f"{r.usage} {r.selector} {r.mtype} {r.cert.hex()}" for r in rrset}
        if rrset.rdtype == dns.rdatatype.RRSIG:
            signed = signed or any(s.type_covered == dns.rdatatype.TLSA for s in rrset)
    return records, signed


def spki_sha256(cert: x509.Certificate) -> str:
    """The 3 1 1 association data, computed here independently of the tool."""
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest()
