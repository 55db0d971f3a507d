"""TLSA record data derived from certificates and keys.

This is the one place where bytes that end up in DNS are computed, so it is strict: it never
hands a key to a key-type-specific external tool whose failure could be lost, and it refuses
outright to hand back data that cannot be a real association, such as the digest of empty
input, which once took down DANE mail for hours.

Usage 1/3 records need only bytes that are already in the files: the certificate, its
SubjectPublicKeyInfo, and the public half stored beside the private key. The deploy hook runs
as a fresh process on every renewal, and importing ``cryptography`` cost more than the rest of
a deploy, so those bytes are read with :mod:`certbot_dane_tlsa.der`, which refuses anything
malformed. ``cryptography`` is imported only where nothing else can answer: checking that an
intermediate really signed the leaf (usage 0/2), keys stored without their public half, key
objects for ``record --key`` and rollover staging, and names in error messages.

Nothing from certbot is imported here: the deploy hook and the plugin import this module.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from certbot_dane_tlsa import der
from certbot_dane_tlsa.dnsname import Name
from certbot_dane_tlsa.errors import CertificateError
from certbot_dane_tlsa.lite_dataclasses import dataclass
from certbot_dane_tlsa.records import MATCHING_TYPES, SELECTORS, TlsaParams, TlsaRecord

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

# Digests of empty input: data equal to one of these means the key or certificate never
# reached the hash (the failure described in docs/field-notes.md section 1).
_EMPTY_DIGESTS = {
    1: hashlib.sha256(b"").digest(),
    2: hashlib.sha512(b"").digest(),
}


class Certificate:
    """A certificate as the DER slices TLSA needs; equal to another when the DER is equal.

    :meth:`to_x509` gives cryptography's object (parsed on first use) to the few callers that
    verify signatures or print names.
    """

    __slots__ = ("_info", "_x509")

    def __init__(self, info: der.CertInfo) -> None:
        self._info = info
        self._x509: x509.Certificate | None = None

    @classmethod
    def from_der(cls, data: bytes) -> Certificate:
        """Raises :class:`der.DerError` (a ValueError) unless ``data`` is one whole certificate."""
        return cls(der.read_certificate(data))

    @classmethod
    def from_x509(cls, cert: x509.Certificate) -> Certificate:
        from cryptography.hazmat.primitives.serialization import Encoding

        made = cls.from_der(cert.public_bytes(Encoding.DER))
        made._x509 = cert
        return made

    @property
    def der(self) -> bytes:
        """The whole certificate: the selector 0 input."""
        return self._info.der

    @property
    def spki(self) -> bytes:
        """The SubjectPublicKeyInfo exactly as the certificate encodes it: the selector 1 input."""
        return self._info.spki

    @property
    def issuer_der(self) -> bytes:
        return self._info.issuer

    @property
    def subject_der(self) -> bytes:
        return self._info.subject

    @property
    def dns_names(self) -> tuple[str, ...]:
        """subjectAltName dNSName entries as written, in certificate order."""
        return self._info.dns_names

    def to_x509(self) -> x509.Certificate:
        if self._x509 is None:
            from cryptography import x509

            self._x509 = x509.load_der_x509_certificate(self._info.der)
        return self._x509

    def subject_text(self) -> str:
        """The subject in RFC 4514 form, for messages (this imports cryptography)."""
        try:
            return self.to_x509().subject.rfc4514_string()
        except ValueError:
            return "(unreadable subject)"

    def issuer_text(self) -> str:
        """The issuer in RFC 4514 form, for messages (this imports cryptography)."""
        try:
            return self.to_x509().issuer.rfc4514_string()
        except ValueError:
            return "(unreadable issuer)"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Certificate):
            return NotImplemented
        return self._info.der == other._info.der

    def __hash__(self) -> int:
        return hash(self._info.der)

    def __repr__(self) -> str:
        digest = hashlib.sha256(self._info.der).hexdigest()[:16]
        return f"Certificate(sha256={digest}..., dns_names={list(self._info.dns_names)})"


def as_certificate(cert: Certificate | x509.Certificate) -> Certificate:
    """``cert`` as a :class:`Certificate` (cryptography's objects are converted)."""
    return cert if isinstance(cert, Certificate) else Certificate.from_x509(cert)


@dataclass(frozen=True, init=False)
class Material:
    """What one lineage gives us: the leaf, the issuers after it, and maybe the key's SPKI.

    Only the public half of the private key is kept: the key check needs nothing else. The
    constructor also takes cryptography's certificates and private keys, for callers that
    hold those; ``key`` given as bytes is the key's DER SubjectPublicKeyInfo.
    """

    leaf: Certificate
    chain: tuple[Certificate, ...]
    key_spki: bytes | None

    def __init__(
        self,
        leaf: Certificate | x509.Certificate,
        chain: Iterable[Certificate | x509.Certificate] = (),
        key: bytes | PrivateKeyTypes | None = None,
    ) -> None:
        spki = key if key is None or isinstance(key, bytes) else spki_der(key.public_key())
        object.__setattr__(self, "leaf", as_certificate(leaf))
        object.__setattr__(self, "chain", tuple(as_certificate(c) for c in chain))
        object.__setattr__(self, "key_spki", spki)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _read(path: Path, what: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CertificateError(
            f"{path}: cannot read the {what}: {_one_line(exc.strerror or str(exc))}"
        ) from None
    if not data.strip():
        raise CertificateError(f"{path}: the {what} file is empty")
    return data


def load_certificates(path: Path) -> list[Certificate]:
    """All PEM certificates in ``path``, in file order; one malformed block spoils the file."""
    data = _read(path, "certificate")
    try:
        certs = [Certificate(info) for info in der.certificates_from_pem(data)]
    except der.DerError:
        certs = []
    if not certs:
        raise CertificateError(f"{path}: no readable PEM certificate in this file")
    return certs


def _encrypted(path: Path) -> CertificateError:
    return CertificateError(f"{path}: the private key is encrypted; an unencrypted key is needed")


def load_private_key(path: Path) -> PrivateKeyTypes:
    """The private key in ``path`` (PEM, or DER as a fallback), as cryptography's object.

    Errors from the parser are not passed on verbatim: the message must never be able to carry
    key bytes into a log.
    """
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.serialization import (
        load_der_private_key,
        load_pem_private_key,
    )

    data = _read(path, "private key")
    try:
        if b"-----BEGIN" in data:
            return load_pem_private_key(data, password=None)
        return load_der_private_key(data, password=None)
    except TypeError:
        # cryptography raises TypeError when a password is needed.
        raise _encrypted(path) from None
    except UnsupportedAlgorithm:
        raise CertificateError(f"{path}: the private key uses an unsupported algorithm") from None
    except ValueError:
        raise CertificateError(f"{path}: not a readable private key (PEM or DER)") from None


def load_key_spki(path: Path) -> bytes:
    """The DER SubjectPublicKeyInfo of the private key in ``path``.

    Read from the file without cryptography when the file carries the public half (PKCS#8 RSA
    and EC, traditional RSA and EC, as certbot and openssl write them); otherwise, and for
    anything the DER reader does not accept, cryptography loads the key, so the outcome and
    the error messages are those of :func:`load_private_key`.
    """
    data = _read(path, "private key")
    try:
        spki = der.private_key_spki(data)
    except der.EncryptedKeyError:
        raise _encrypted(path) from None
    except der.DerError:
        spki = None
    if spki is None:
        spki = spki_der(load_private_key(path).public_key())
    return spki


def load_public_key(path: Path) -> PublicKeyTypes:
    """The public key in ``path``, which may hold a public key or a private key (PEM).

    ``record --key`` takes either, so a key staged for the next rollover can be published
    before any certificate exists for it.
    """
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    data = _read(path, "key")
    if b"PRIVATE KEY-----" in data or b"-----BEGIN" not in data:
        return load_private_key(path).public_key()
    try:
        return load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise CertificateError(f"{path}: not a readable public key (PEM)") from None


def load_material(cert: Path, chain: Path | None = None, key: Path | None = None) -> Material:
    """Leaf, chain and key from files.

    ``cert`` may be a fullchain file: its first certificate is the leaf and the rest is chain.
    Certificates repeated between ``cert`` and ``chain`` are kept once, in first-seen order.
    """
    certs = load_certificates(cert)
    issuers = list(certs[1:])
    if chain is not None:
        issuers.extend(load_certificates(chain))
    unique = tuple(dict.fromkeys(issuers))  # Certificate hashes and compares by its DER
    material = Material(certs[0], unique, load_key_spki(key) if key is not None else None)
    if key is not None and not _key_fits(material):
        raise CertificateError(
            f"{key}: the private key does not belong to the certificate in {cert}"
        )
    return material


def spki_der(public_key: PublicKeyTypes) -> bytes:
    """DER SubjectPublicKeyInfo of cryptography's key object: the selector 1 input."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def same_public_key(spki: bytes, other: bytes) -> bool:
    """Whether two DER SubjectPublicKeyInfos hold the same key.

    Equal bytes settle it. Different bytes can still be one key (a certificate may carry a
    compressed EC point, or RSA parameters without the NULL), so only then, on the way to an
    error, cryptography re-encodes both the way it writes them.
    """
    if spki == other:
        return True
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    try:
        return spki_der(load_der_public_key(spki)) == spki_der(load_der_public_key(other))
    except (ValueError, UnsupportedAlgorithm):
        return False


def _key_fits(material: Material) -> bool:
    return material.key_spki is None or same_public_key(material.key_spki, material.leaf.spki)


def check_key_matches(material: Material) -> None:
    """Refuse material whose private key is not the leaf's: its records would lock us out.

    Material without a private key has nothing to compare and passes.
    """
    if not _key_fits(material):
        raise CertificateError(
            "the private key does not belong to the certificate "
            f"(subject {_one_line(material.leaf.subject_text())})"
        )


def _digest(data: bytes, mtype: int) -> bytes:
    if mtype == 0:
        return data
    if mtype == 1:
        return hashlib.sha256(data).digest()
    if mtype == 2:
        return hashlib.sha512(data).digest()
    raise ValueError(f"matching type {mtype} is not one of 0, 1, 2")


def association_data(cert: Certificate | x509.Certificate, selector: int, mtype: int) -> bytes:
    """The TLSA data that ``cert`` yields for ``selector``/``mtype`` (ValueError if unknown).

    Shared by :func:`derive` and the live check so both sides compute it the same way.
    """
    certificate = as_certificate(cert)
    if selector == 0:
        selected = certificate.der
    elif selector == 1:
        selected = certificate.spki
    else:
        raise ValueError(f"selector {selector} is not one of 0, 1")
    return _digest(selected, mtype)


def _refuse_degenerate(data: bytes, params: TlsaParams, what: str | Certificate) -> None:
    if not data or data == _EMPTY_DIGESTS.get(params.mtype):
        described = what if isinstance(what, str) else _describe(what)
        raise CertificateError(
            f"refusing to publish TLSA {params} for {described}: the data is empty or the digest "
            "of empty input, so the certificate or key was not read"
        )


def _check_params(params: TlsaParams) -> None:
    if params.usage not in (0, 1, 2, 3):
        raise CertificateError(f"TLSA usage {params.usage} is not one of 0, 1, 2, 3")
    if params.selector not in SELECTORS:
        raise CertificateError(f"TLSA selector {params.selector} is not one of 0, 1")
    if params.mtype not in MATCHING_TYPES:
        raise CertificateError(f"TLSA matching type {params.mtype} is not one of 0, 1, 2")


def _describe(cert: Certificate) -> str:
    return _one_line(cert.subject_text()) or "(empty subject)"


def _as_x509(cert: Certificate | x509.Certificate) -> x509.Certificate:
    return cert.to_x509() if isinstance(cert, Certificate) else cert


def issued_by(cert: Certificate | x509.Certificate, issuer: Certificate | x509.Certificate) -> bool:
    """Whether ``issuer`` really signed ``cert``: the names agree and the signature verifies.

    Name equality alone is not enough, because an intermediate can be re-keyed or cross-signed
    under the same name; a DANE-TA record for the wrong key would not match.
    """
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

    try:
        child, parent = _as_x509(cert), _as_x509(issuer)
        if child.issuer != parent.subject:
            return False
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def find_issuer(leaf: Certificate, chain: Iterable[Certificate]) -> Certificate:
    """The certificate in ``chain`` that issued ``leaf`` (CertificateError if none did)."""
    for candidate in chain:
        if issued_by(leaf, candidate):
            return candidate
    raise CertificateError(
        f"the issuer of {_describe(leaf)} ({_one_line(leaf.issuer_text())}) is not "
        "in the chain file; usage 0/2 records need the intermediate that signed the certificate"
    )


def derive(material: Material, params: TlsaParams) -> TlsaRecord:
    """The TLSA record ``params`` asks for.

    Usage 1/3 describe the leaf; usage 0/2 the certificate that actually issued it, found by
    name and signature so that a stale or unrelated intermediate in the chain file is not used.
    """
    _check_params(params)
    check_key_matches(material)
    leaf = material.leaf
    target = leaf if params.usage in (1, 3) else find_issuer(leaf, material.chain)
    data = association_data(target, params.selector, params.mtype)
    _refuse_degenerate(data, params, target)
    return TlsaRecord(params.usage, params.selector, params.mtype, data)


def derive_from_public_key(public_key: PublicKeyTypes | bytes, params: TlsaParams) -> TlsaRecord:
    """A selector 1 record for a bare key, e.g. a staged next key with no certificate yet.

    ``public_key`` is cryptography's key object or the key's DER SubjectPublicKeyInfo.
    """
    _check_params(params)
    if params.selector != 1:
        raise CertificateError(
            f"TLSA {params}: a bare public key only gives selector 1 (SPKI) records; "
            "selector 0 needs the certificate"
        )
    spki = public_key if isinstance(public_key, bytes) else spki_der(public_key)
    data = _digest(spki, params.mtype)
    _refuse_degenerate(data, params, "the public key")
    return TlsaRecord(params.usage, params.selector, params.mtype, data)


def params_warnings(params: TlsaParams, port: int) -> list[str]:
    """Advice about parameter choices that work but are known to cause outages or bloat."""
    warnings: list[str] = []
    if params.selector == 0:
        warnings.append(
            f"TLSA {params}: selector 0 hashes the whole certificate, which changes at every "
            "renewal; selector 1 (public key) survives renewals with a reused key"
        )
    if params.usage in (0, 1) and port == 25:
        warnings.append(
            f"TLSA {params}: usage {params.usage} is unusable for SMTP on port 25 "
            "(RFC 7672 section 3.1.3): DANE senders treat it as unusable; use 3 or 2"
        )
    if params.mtype == 0:
        warnings.append(
            f"TLSA {params}: matching type 0 publishes the full data, making large RRsets "
            "(truncation, TCP fallback); use 1 (SHA-256)"
        )
    if params.usage == 2:
        warnings.append(
            f"TLSA {params}: usage 2 pins the issuing intermediate; Let's Encrypt picks among "
            "several and rotates them, so publish 3 1 1 as well or every possible issuer"
        )
    return warnings


def record_lines(records: Iterable[tuple[Name, TlsaRecord]], ttl: int | None = None) -> list[str]:
    """Master-file lines, one per record, e.g. ``_25._tcp.mx.example.com. 3600 IN TLSA 3 1 1 ..``.

    Owners are printed as given; pass absolute names so the lines do not depend on ``$ORIGIN``.
    """
    ttl_field = "" if ttl is None else f" {ttl}"
    return [f"{owner.to_text()}{ttl_field} IN TLSA {rec.to_text()}" for owner, rec in records]
