"""What a live server presents, and whether it matches TLSA records.

After a reload the question is not "is the certificate valid" but "would a DANE sender accept
it", so the chain is fetched without any PKIX validation and compared to the records with DANE
semantics. STARTTLS is spoken here directly (a few lines per protocol) instead of through
smtplib/imaplib, because those hide the server's reply on failure and validate by default.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from certbot_dane_tlsa.errors import VerificationError
from certbot_dane_tlsa.records import TlsaRecord
from certbot_dane_tlsa.tlsa import Certificate, as_certificate, association_data, issued_by

if TYPE_CHECKING:
    from cryptography import x509

TLS_MODES = ("starttls-smtp", "starttls-imap", "starttls-pop3", "tls")

_DEFAULT_MODES = {
    25: "starttls-smtp",
    587: "starttls-smtp",
    143: "starttls-imap",
    110: "starttls-pop3",
}
_MAX_LINE = 8192
_MAX_LINES = 200


def default_tls_mode(port: int) -> str:
    """The usual way to reach TLS on ``port``; implicit TLS for anything not known otherwise."""
    return _DEFAULT_MODES.get(port, "tls")


def _where(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _printable(line: bytes) -> str:
    text = line.decode("utf-8", "replace").rstrip("\r\n")
    return "".join(ch if ch.isprintable() else "?" for ch in text)[:200]


class _Lines:
    """Line reader over a plain socket that never reads past what it returns.

    Anything buffered beyond the STARTTLS reply would be plaintext injected before the
    handshake (the CVE-2011-0411 class of bug), so it is exposed for the caller to reject.
    """

    def __init__(self, sock: socket.socket, where: str) -> None:
        self._sock = sock
        self.where = where
        self.buffer = b""
        self.count = 0

    def readline(self) -> bytes:
        while b"\n" not in self.buffer:
            if len(self.buffer) > _MAX_LINE:
                raise VerificationError(f"{self.where}: server sent an over-long line")
            chunk = self._sock.recv(4096)
            if not chunk:
                last = f" after {_printable(self.buffer)!r}" if self.buffer else ""
                raise VerificationError(f"{self.where}: server closed the connection{last}")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        self.count += 1
        if self.count > _MAX_LINES:
            raise VerificationError(f"{self.where}: server sent too many lines before TLS")
        return line + b"\n"

    def send(self, data: bytes) -> None:
        self._sock.sendall(data)


def _smtp_reply(lines: _Lines) -> tuple[int, list[bytes]]:
    """One (possibly multi-line) SMTP reply: its code and its lines."""
    reply: list[bytes] = []
    while True:
        line = lines.readline()
        reply.append(line)
        if len(line) < 4 or not line[:3].isdigit() or line[3:4] not in (b" ", b"-", b"\r", b"\n"):
            raise VerificationError(f"{lines.where}: not an SMTP reply: {_printable(line)!r}")
        if line[3:4] != b"-":
            return int(line[:3]), reply


def _helo_name(sock: socket.socket) -> str:
    # An address literal is always a syntactically valid EHLO argument (RFC 5321 4.1.3) and
    # needs no DNS lookup of our own name.
    local = str(sock.getsockname()[0])
    if ipaddress.ip_address(local).version == 6:
        return f"[IPv6:{local}]"
    return f"[{local}]"


def _starttls_smtp(lines: _Lines, sock: socket.socket) -> None:
    where = lines.where
    code, reply = _smtp_reply(lines)
    if code != 220:
        raise VerificationError(f"{where}: SMTP greeting refused: {_printable(reply[-1])!r}")
    lines.send(f"EHLO {_helo_name(sock)}\r\n".encode("ascii"))
    code, reply = _smtp_reply(lines)
    if code != 250:
        raise VerificationError(f"{where}: EHLO refused: {_printable(reply[-1])!r}")
    if not any(line[4:].strip().upper() == b"STARTTLS" for line in reply):
        raise VerificationError(
            f"{where}: server does not offer STARTTLS (EHLO reply ends {_printable(reply[-1])!r})"
        )
    lines.send(b"STARTTLS\r\n")
    code, reply = _smtp_reply(lines)
    if code != 220:
        raise VerificationError(f"{where}: STARTTLS refused: {_printable(reply[-1])!r}")


def _starttls_imap(lines: _Lines, sock: socket.socket) -> None:
    where = lines.where
    greeting = lines.readline()
    if not greeting.upper().startswith(b"* OK"):
        raise VerificationError(f"{where}: IMAP greeting refused: {_printable(greeting)!r}")
    lines.send(b"a1 STARTTLS\r\n")
    while True:
        line = lines.readline()
        if line.startswith(b"* "):
            continue
        if line.upper().startswith(b"A1 OK"):
            return
        raise VerificationError(f"{where}: STARTTLS refused: {_printable(line)!r}")


def _starttls_pop3(lines: _Lines, sock: socket.socket) -> None:
    where = lines.where
    greeting = lines.readline()
    if not greeting.startswith(b"+OK"):
        raise VerificationError(f"{where}: POP3 greeting refused: {_printable(greeting)!r}")
    lines.send(b"STLS\r\n")
    reply = lines.readline()
    if not reply.startswith(b"+OK"):
        raise VerificationError(f"{where}: STLS refused: {_printable(reply)!r}")


_STARTTLS: dict[str, Callable[[_Lines, socket.socket], None]] = {
    "starttls-smtp": _starttls_smtp,
    "starttls-imap": _starttls_imap,
    "starttls-pop3": _starttls_pop3,
}


def _client_context() -> ssl.SSLContext:
    # No validation on purpose: DANE decides, and a DANE-EE server may well present a
    # certificate no public CA would accept.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _presented_chain(tls: ssl.SSLSocket) -> list[bytes]:
    # Python 3.13+ has the public method; 3.11/3.12 only expose it on the private _sslobj,
    # whose items are _ssl.Certificate objects with public_bytes(format).
    public = getattr(tls, "get_unverified_chain", None)
    raw = public() if public is not None else tls._sslobj.get_unverified_chain()  # type: ignore[attr-defined]
    ders: list[bytes] = []
    for item in raw or ():
        if isinstance(item, bytes):
            ders.append(item)
        else:
            ders.append(item.public_bytes(ssl._ssl.ENCODING_DER))  # type: ignore[attr-defined]
    return ders


def fetch_chain(
    address: str, port: int, *, mode: str, server_name: str, timeout: float = 10.0
) -> list[x509.Certificate]:
    """The certificates the server at ``address``:``port`` presents, leaf first.

    ``server_name`` is sent as SNI (servers with several certificates choose by it). Each one
    must be readable both by cryptography (which verifies issuer signatures) and by the DER
    reader (which gives the bytes the records are compared with).
    """
    from cryptography import x509

    if mode not in TLS_MODES:
        raise VerificationError(f"TLS mode {mode!r} is not one of {', '.join(TLS_MODES)}")
    where = _where(address, port)
    try:
        sock = socket.create_connection((address, port), timeout=timeout)
    except OSError as exc:
        raise VerificationError(f"{where}: cannot connect: {exc}") from None
    with sock:
        try:
            starttls = _STARTTLS.get(mode)
            if starttls is not None:
                lines = _Lines(sock, where)
                starttls(lines, sock)
                if lines.buffer:
                    raise VerificationError(
                        f"{where}: server sent data before the TLS handshake: "
                        f"{_printable(lines.buffer)!r}"
                    )
            sni = server_name.rstrip(".") or None
            with _client_context().wrap_socket(sock, server_hostname=sni) as tls:
                ders = _presented_chain(tls)
        except ssl.SSLError as exc:
            raise VerificationError(f"{where}: TLS handshake failed: {exc}") from None
        except OSError as exc:
            raise VerificationError(f"{where}: connection failed during {mode}: {exc}") from None
    if not ders:
        raise VerificationError(f"{where}: server presented no certificate")
    try:
        for der in ders:
            Certificate.from_der(der)
        return [x509.load_der_x509_certificate(der) for der in ders]
    except ValueError as exc:
        raise VerificationError(
            f"{where}: server presented an unreadable certificate: {exc}"
        ) from None


def _issuer_path(chain: Sequence[Certificate]) -> list[Certificate]:
    """The presented certificates the leaf chains up to, nearest first.

    Each step needs a matching name *and* a verifying signature, so a stray certificate in the
    server's chain cannot stand in for the real trust anchor.
    """
    path: list[Certificate] = []
    current = chain[0]
    remaining = list(chain[1:])
    while remaining:
        parent = next((c for c in remaining if issued_by(current, c)), None)
        if parent is None:
            break
        path.append(parent)
        remaining.remove(parent)
        current = parent
    return path


def _matches_any(record: TlsaRecord, certs: Iterable[Certificate]) -> bool:
    for cert in certs:
        try:
            if association_data(cert, record.selector, record.mtype) == record.data:
                return True
        except ValueError:  # unknown selector or matching type: an unusable record
            return False
    return False


def chain_matches(
    chain: Sequence[Certificate | x509.Certificate], records: Iterable[TlsaRecord]
) -> list[TlsaRecord]:
    """The records that the presented ``chain`` (leaf first) satisfies; empty means mismatch.

    RFC 6698/7671 semantics for the certificate side only: usage 3 and 1 match the leaf
    (no name or expiry checks: RFC 7671 section 5.1 says so for 3); usage 2 and 0 match a
    certificate the leaf chains up to within the presented chain, checked by issuer name and
    signature. No PKIX path validation is done, so a 0 or 1 record matching here is necessary
    but not sufficient for a PKIX-requiring client; for SMTP (RFC 7672) those usages are
    unusable anyway. The issuer path (signature checks, so cryptography) is only worked out
    when a usage 0/2 record asks for it.
    """
    if not chain:
        return []
    certs = [as_certificate(c) for c in chain]
    leaf = certs[0]
    issuers: list[Certificate] | None = None
    matched: list[TlsaRecord] = []
    for record in records:
        if record.usage in (1, 3):
            candidates: Sequence[Certificate] = (leaf,)
        elif record.usage in (0, 2):
            if issuers is None:
                issuers = _issuer_path(certs)
            candidates = issuers
        else:
            continue
        if _matches_any(record, candidates):
            matched.append(record)
    return matched
