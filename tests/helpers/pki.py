"""A throw-away PKI for tests: root CA -> intermediate -> leaf, and certbot-shaped lineages.

Tests need certificates of every key type certbot can produce, with a real issuer chain, laid
out on disk exactly as certbot lays them out (``archive/NAME/certN.pem`` and relative symlinks
from ``live/NAME``), so that lineage reading and record derivation meet the same shapes they
meet in production. Everything is generated fresh so no key material is ever checked in.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
)
from cryptography.x509.oid import NameOID

KEY_TYPES = ("rsa2048", "p256", "p384", "ed25519")

_ONE_DAY = datetime.timedelta(days=1)


def make_key(kind: str) -> CertificateIssuerPrivateKeyTypes:
    """A new private key of one of :data:`KEY_TYPES`."""
    if kind == "rsa2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "p384":
        return ec.generate_private_key(ec.SECP384R1())
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"unknown key type {kind!r}")


def _hash_for(key: CertificateIssuerPrivateKeyTypes) -> hashes.SHA256 | hashes.SHA384 | None:
    # Ed25519 signs without a separate digest; cryptography wants None for it.
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size >= 384:
        return hashes.SHA384()
    return hashes.SHA256()


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "certbot-dane-tlsa tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def issue(
    subject: str,
    public_key: CertificatePublicKeyTypes,
    issuer_cert: x509.Certificate | None,
    issuer_key: CertificateIssuerPrivateKeyTypes,
    *,
    ca: bool,
    dns_names: Sequence[str] = (),
    days: int = 90,
) -> x509.Certificate:
    """Sign one certificate; ``issuer_cert=None`` makes it self-signed."""
    now = datetime.datetime.now(datetime.UTC)
    issuer_name = issuer_cert.subject if issuer_cert is not None else _name(subject)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _ONE_DAY)
        .not_valid_after(now + days * _ONE_DAY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
    else:
        usage = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
    builder = builder.add_extension(usage, critical=True)
    if dns_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False
        )
    return builder.sign(issuer_key, _hash_for(issuer_key))


@dataclass
class Pki:
    """Root, intermediate and leaf, with their keys."""

    root: x509.Certificate
    root_key: CertificateIssuerPrivateKeyTypes
    intermediate: x509.Certificate
    intermediate_key: CertificateIssuerPrivateKeyTypes
    leaf: x509.Certificate
    leaf_key: CertificateIssuerPrivateKeyTypes
    names: tuple[str, ...] = field(default=())

    def reissue(
        self, leaf_key: CertificateIssuerPrivateKeyTypes | None = None, *, days: int = 90
    ) -> Pki:
        """A renewal: a new leaf from the same intermediate, with the same or a new key."""
        key = leaf_key if leaf_key is not None else self.leaf_key
        leaf = issue(
            self.names[0] if self.names else "leaf",
            key.public_key(),
            self.intermediate,
            self.intermediate_key,
            ca=False,
            dns_names=self.names,
            days=days,
        )
        return Pki(
            self.root,
            self.root_key,
            self.intermediate,
            self.intermediate_key,
            leaf,
            key,
            self.names,
        )


def make_pki(
    leaf_type: str = "p256",
    names: Sequence[str] = ("mx.example.test",),
    *,
    ca_type: str | None = None,
    tag: str = "",
) -> Pki:
    """A fresh three-level PKI. ``ca_type`` defaults to the leaf's key type."""
    ca_kind = ca_type or leaf_type
    root_key = make_key(ca_kind)
    root = issue(f"Test Root {tag}{ca_kind}", root_key.public_key(), None, root_key, ca=True)
    inter_key = make_key(ca_kind)
    inter = issue(
        f"Test Intermediate {tag}{ca_kind}", inter_key.public_key(), root, root_key, ca=True
    )
    leaf_key = make_key(leaf_type)
    leaf = issue(
        names[0] if names else "leaf",
        leaf_key.public_key(),
        inter,
        inter_key,
        ca=False,
        dns_names=names,
    )
    return Pki(root, root_key, inter, inter_key, leaf, leaf_key, tuple(names))


def cert_pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def key_pem(key: CertificateIssuerPrivateKeyTypes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


_KINDS = ("cert", "chain", "fullchain", "privkey")


def write_lineage(config_dir: Path, name: str, pki: Pki) -> Path:
    """Add one version to a certbot lineage under ``config_dir`` and point ``live/`` at it.

    The first call creates ``archive/NAME/{cert,chain,fullchain,privkey}1.pem``; each later call
    adds version N+1, as ``certbot renew`` does. The ``live/NAME`` links are relative, like
    certbot's. Returns the live directory.
    """
    archive = config_dir / "archive" / name
    live = config_dir / "live" / name
    archive.mkdir(parents=True, exist_ok=True)
    live.mkdir(parents=True, exist_ok=True)
    version = 1
    while (archive / f"cert{version}.pem").exists():
        version += 1
    contents = {
        "cert": cert_pem(pki.leaf),
        "chain": cert_pem(pki.intermediate),
        "fullchain": cert_pem(pki.leaf, pki.intermediate),
        "privkey": key_pem(pki.leaf_key),
    }
    for kind in _KINDS:
        target = archive / f"{kind}{version}.pem"
        target.write_bytes(contents[kind])
        if kind == "privkey":
            target.chmod(0o600)
        link = live / f"{kind}.pem"
        tmp = live / f".{kind}.pem.new"
        tmp.unlink(missing_ok=True)
        os.symlink(os.path.relpath(target, live), tmp)
        tmp.replace(link)
    readme = live / "README"
    if not readme.exists():
        readme.write_text("This directory contains your keys and certificates.\n")
    return live


def write_renewal_conf(config_dir: Path, name: str, extra: str = "") -> Path:
    """A minimal ``renewal/NAME.conf`` such as certbot writes."""
    renewal = config_dir / "renewal"
    renewal.mkdir(parents=True, exist_ok=True)
    live = config_dir / "live" / name
    archive = config_dir / "archive" / name
    path = renewal / f"{name}.conf"
    path.write_text(
        "version = 5.0.0\n"
        f"archive_dir = {archive}\n"
        f"cert = {live}/cert.pem\n"
        f"privkey = {live}/privkey.pem\n"
        f"chain = {live}/chain.pem\n"
        f"fullchain = {live}/fullchain.pem\n"
        "\n[renewalparams]\n"
        "authenticator = standalone\n" + extra
    )
    return path
