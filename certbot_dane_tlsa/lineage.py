"""Reading a certbot lineage (``<config-dir>/live/NAME``) without importing certbot.

The deploy hook only gets ``RENEWED_LINEAGE``; everything else (files, names, the renewal
configuration) is found from that directory the way certbot lays it out.
"""

from __future__ import annotations

import os
from pathlib import Path

from certbot_dane_tlsa.errors import CertificateError
from certbot_dane_tlsa.lite_dataclasses import dataclass
from certbot_dane_tlsa.tlsa import Material, load_certificates, load_material

_FILES = ("cert", "chain", "fullchain", "privkey")


@dataclass(frozen=True)
class Lineage:
    """The four ``live/`` paths of one lineage.

    The paths are the ``live/`` symlinks, not their targets, so they stay right after renewal.
    """

    live_dir: Path
    name: str
    cert: Path
    chain: Path
    fullchain: Path
    privkey: Path

    @classmethod
    def from_dir(cls, live_dir: Path) -> Lineage:
        # abspath, not resolve(): keep the live/ symlinks as symlinks.
        live = Path(os.path.abspath(live_dir))
        if not live.is_dir():
            what = "is not a directory" if live.exists() else "does not exist"
            raise CertificateError(f"{live}: certbot lineage directory {what}")
        paths = {kind: live / f"{kind}.pem" for kind in _FILES}
        for path in paths.values():
            if not path.exists():
                detail = "is a dangling symlink" if path.is_symlink() else "is missing"
                raise CertificateError(f"{path}: {detail} in the certbot lineage")
        return cls(live, live.name, **paths)

    def material(self) -> Material:
        """Leaf, chain and key, with the key checked against the leaf."""
        return load_material(self.cert, self.chain, self.privkey)

    def names(self) -> list[str]:
        """DNS names from the leaf's subjectAltName, lower-case, in certificate order.

        Wildcard names (``*.example.com``) are left out: a TLSA record belongs to a concrete
        service host (``_25._tcp.mx.example.com``), and a record at a ``*`` owner would be a
        DNS wildcard with different meaning. Hosts covered by a wildcard are named explicitly
        in the settings instead.
        """
        # Only the certificate: listing names should not need read access to the key.
        cert = load_certificates(self.cert)[0]
        names: list[str] = []
        for name in cert.dns_names:
            lower = name.lower().rstrip(".")
            if lower and not lower.startswith("*") and lower not in names:
                names.append(lower)
        return names

    def renewal_conf(self) -> Path | None:
        """``<config-dir>/renewal/NAME.conf`` (config dir = ``live_dir/../..``), if present."""
        path = self.live_dir.parent.parent / "renewal" / f"{self.name}.conf"
        return path if path.is_file() else None
