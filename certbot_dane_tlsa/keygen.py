"""Next keys: the same shape as the current key unless the user asks for another.

Certbot names key shapes as ``--key-type rsa|ecdsa`` with ``--rsa-key-size`` or
``--elliptic-curve``; we use the same words so that the certbot call at commit time can be
given exactly the shape of the staged key (certbot refuses a reused key whose shape differs
from what its renewal config says).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from certbot_dane_tlsa import der
from certbot_dane_tlsa.errors import CertificateError, SettingsError
from certbot_dane_tlsa.lite_dataclasses import dataclass

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

# In cryptography's words (curve.name), which certbot's --elliptic-curve also accepts.
CURVES = ("secp256r1", "secp384r1", "secp521r1")
RSA_SIZES = (2048, 3072, 4096)


@dataclass(frozen=True)
class KeyShape:
    key_type: str  # "rsa" or "ecdsa"
    key_size: int | None = None
    curve: str | None = None

    def __str__(self) -> str:
        return f"rsa {self.key_size}" if self.key_type == "rsa" else f"ecdsa {self.curve}"

    def certbot_args(self) -> list[str]:
        """The certbot flags that describe this shape (for ``certbot renew --reuse-key``)."""
        if self.key_type == "rsa":
            return ["--key-type", "rsa", "--rsa-key-size", str(self.key_size)]
        return ["--key-type", "ecdsa", "--elliptic-curve", str(self.curve)]


def shape_of(spki: bytes) -> KeyShape:
    """The shape of the key in a DER SubjectPublicKeyInfo (CertificateError if not RSA/ECDSA).

    RSA and the usual curves are read from the DER; anything else goes through cryptography,
    so odd keys are named in its words as before.
    """
    try:
        kind = der.spki_kind(spki)
    except der.DerError:
        kind = None
    if kind is not None and kind.algorithm == "rsa":
        return KeyShape("rsa", key_size=kind.rsa_bits)
    if kind is not None and kind.algorithm == "ec" and kind.curve is not None:
        return KeyShape("ecdsa", curve=kind.curve)
    return _shape_by_cryptography(spki)


def _shape_by_cryptography(spki: bytes) -> KeyShape:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    try:
        public = load_der_public_key(spki)
    except (ValueError, UnsupportedAlgorithm):
        raise CertificateError(
            "the certificate's public key is not readable, so it cannot be rolled over"
        ) from None
    if isinstance(public, rsa.RSAPublicKey):
        return KeyShape("rsa", key_size=public.key_size)
    if isinstance(public, ec.EllipticCurvePublicKey):
        return KeyShape("ecdsa", curve=public.curve.name)
    raise CertificateError(
        f"a {type(public).__name__} key cannot be rolled over by certbot (only RSA and ECDSA)"
    )


def spki_sha256(spki: bytes) -> str:
    """Hex SHA-256 of a DER SubjectPublicKeyInfo: how the state file names a key."""
    return hashlib.sha256(spki).hexdigest()


def choose_shape(
    current: KeyShape,
    *,
    key_type: str | None = None,
    rsa_key_size: int | None = None,
    elliptic_curve: str | None = None,
) -> KeyShape:
    """The current shape, with whatever the user overrode."""
    kind = (key_type or current.key_type).lower()
    if kind == "rsa":
        size = rsa_key_size or (current.key_size if current.key_type == "rsa" else 2048)
        if size not in RSA_SIZES:
            raise SettingsError(f"--rsa-key-size: {size} is not one of {RSA_SIZES}")
        if elliptic_curve:
            raise SettingsError("--elliptic-curve goes with --key-type ecdsa, not rsa")
        return KeyShape("rsa", key_size=size)
    if kind == "ecdsa":
        curve = (elliptic_curve or (current.curve if current.key_type == "ecdsa" else None)) or (
            "secp256r1"
        )
        curve = curve.lower()
        if curve not in CURVES:
            raise SettingsError(f"--elliptic-curve: {curve} is not one of {', '.join(CURVES)}")
        if rsa_key_size:
            raise SettingsError("--rsa-key-size goes with --key-type rsa, not ecdsa")
        return KeyShape("ecdsa", curve=curve)
    raise SettingsError(f"--key-type: {key_type!r} is not rsa or ecdsa")


def generate(shape: KeyShape) -> tuple[PrivateKeyTypes, bytes]:
    """A fresh private key and its unencrypted PKCS#8 PEM (what certbot can reuse)."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
    )

    key: PrivateKeyTypes
    if shape.key_type == "rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=shape.key_size or 2048)
    else:
        curves: dict[str, type[ec.EllipticCurve]] = {
            "secp256r1": ec.SECP256R1,
            "secp384r1": ec.SECP384R1,
            "secp521r1": ec.SECP521R1,
        }
        key = ec.generate_private_key(curves[shape.curve or "secp256r1"]())
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    return key, pem
