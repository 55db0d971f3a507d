"""Just enough DER and PEM to read certificates and key files without ``cryptography``.

Importing cryptography's X.509 and serialization layers costs more than the rest of a deploy
together, yet usage 1/3 records need only bytes that already sit in the files as they are: the
certificate, its SubjectPublicKeyInfo, and (to check that the key belongs to the certificate)
the public half that PKCS#8, OpenSSL's traditional formats and RFC 5915 keys usually carry next
to the private one. So this module walks the structures and hands back byte slices; it never
does key arithmetic, and whatever it cannot answer with certainty (a key without its public
half, a compressed point, an algorithm it does not know) it leaves to the caller, who falls
back on cryptography.

The reader is strict DER: definite, minimal lengths, minimal integers, every length checked
against its container, nothing trailing. Malformed input raises :class:`DerError` and nothing
else, so callers can catch one exception.
"""

from __future__ import annotations

import binascii
from typing import NamedTuple

# Universal tags, and the context tags X.509 and PKCS#8 use (class bits included).
BOOLEAN = 0x01
INTEGER = 0x02
BIT_STRING = 0x03
OCTET_STRING = 0x04
NULL = 0x05
OID = 0x06
UTC_TIME = 0x17
GENERALIZED_TIME = 0x18
SEQUENCE = 0x30
SET = 0x31
CTX0 = 0xA0  # [0] constructed
CTX1 = 0xA1  # [1] constructed
CTX3 = 0xA3  # [3] constructed
CTX1_PRIM = 0x81  # [1] primitive
CTX2_PRIM = 0x82  # [2] primitive

_OID_RSA = bytes.fromhex("2a864886f70d010101")  # 1.2.840.113549.1.1.1 rsaEncryption
_OID_EC = bytes.fromhex("2a8648ce3d0201")  # 1.2.840.10045.2.1 id-ecPublicKey
_OID_ED25519 = bytes.fromhex("2b6570")  # 1.3.101.112
_OID_ED448 = bytes.fromhex("2b6571")  # 1.3.101.113
_OID_SAN = bytes.fromhex("551d11")  # 2.5.29.17 subjectAltName

# Named curves: OID content -> (cryptography's curve.name, field size in bytes).
_CURVES: dict[bytes, tuple[str, int]] = {
    bytes.fromhex("2a8648ce3d030107"): ("secp256r1", 32),
    bytes.fromhex("2b81040022"): ("secp384r1", 48),
    bytes.fromhex("2b81040023"): ("secp521r1", 66),
    bytes.fromhex("2b8104000a"): ("secp256k1", 32),
    bytes.fromhex("2b81040021"): ("secp224r1", 28),
    bytes.fromhex("2a8648ce3d030101"): ("secp192r1", 24),
}
# Ed25519/Ed448 key lengths (private and public are the same size).
_EDWARDS = {_OID_ED25519: ("ed25519", 32), _OID_ED448: ("ed448", 57)}

_CERT_LABELS = ("CERTIFICATE", "X509 CERTIFICATE")
_KEY_LABELS = ("PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY")
_ENCRYPTED_LABEL = "ENCRYPTED PRIVATE KEY"
# GeneralName choices (RFC 5280 4.2.1.6) with their DER tags.
_GENERAL_NAME_TAGS = frozenset((0xA0, 0x81, 0x82, 0xA3, 0xA4, 0xA5, 0x86, 0x87, 0x88))


class DerError(ValueError):
    """The input is not the DER or PEM structure that was expected."""


class EncryptedKeyError(DerError):
    """A private key that needs a password before anything can be read from it."""


# --- the reader ------------------------------------------------------------------------------


class Tlv:
    """One element: its tag and where its header and content sit in ``data``."""

    __slots__ = ("content", "data", "end", "start", "tag")

    def __init__(self, data: bytes, tag: int, start: int, content: int, end: int) -> None:
        self.data = data
        self.tag = tag
        self.start = start
        self.content = content
        self.end = end

    @property
    def value(self) -> bytes:
        """The content octets."""
        return self.data[self.content : self.end]

    @property
    def encoded(self) -> bytes:
        """The whole element, header included, exactly as it was encoded."""
        return self.data[self.start : self.end]

    def children(self) -> Reader:
        return Reader(self.data, self.content, self.end)


class Reader:
    """Consecutive elements in ``data[pos:end]``, read front to back."""

    __slots__ = ("data", "end", "pos")

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    def more(self) -> bool:
        return self.pos < self.end

    def peek(self) -> int | None:
        """The next element's tag, or None at the end."""
        return self.data[self.pos] if self.pos < self.end else None

    def next(self, tag: int | None = None, what: str = "element") -> Tlv:
        """The next element; ``tag`` (if given) is the tag it must have."""
        data, pos, end = self.data, self.pos, self.end
        if end - pos < 2:
            raise DerError(f"{what}: truncated")
        found = data[pos]
        if found & 0x1F == 0x1F:
            raise DerError(f"{what}: multi-byte tags are not supported")
        if tag is not None and found != tag:
            raise DerError(f"{what}: expected tag 0x{tag:02x}, found 0x{found:02x}")
        first = data[pos + 1]
        content = pos + 2
        if first < 0x80:
            length = first
        elif first == 0x80:
            raise DerError(f"{what}: indefinite length is not DER")
        else:
            count = first & 0x7F
            if count > 4 or end - content < count:
                raise DerError(f"{what}: length field is too long or truncated")
            length = int.from_bytes(data[content : content + count], "big")
            if data[content] == 0 or length < 0x80:
                raise DerError(f"{what}: length is not minimally encoded")
            content += count
        if length > end - content:
            raise DerError(f"{what}: length runs past the end of its container")
        self.pos = content + length
        return Tlv(data, found, pos, content, content + length)

    def optional(self, tag: int, what: str = "element") -> Tlv | None:
        """The next element if it has ``tag``, else None (nothing is consumed)."""
        return self.next(tag, what) if self.peek() == tag else None

    def finish(self, what: str) -> None:
        if self.pos != self.end:
            raise DerError(f"{what}: unexpected data after the last element")


def read_single(data: bytes, tag: int, what: str) -> Tlv:
    """``data`` as exactly one element with ``tag``, nothing before or after it."""
    reader = Reader(data)
    tlv = reader.next(tag, what)
    reader.finish(what)
    return tlv


def integer(tlv: Tlv, what: str) -> int:
    """A minimally encoded INTEGER (serial numbers may be negative in the wild)."""
    body = tlv.value
    if tlv.tag != INTEGER or not body:
        raise DerError(f"{what}: not an INTEGER")
    if len(body) > 1 and (
        (body[0] == 0 and body[1] < 0x80) or (body[0] == 0xFF and body[1] >= 0x80)
    ):
        raise DerError(f"{what}: INTEGER is not minimally encoded")
    return int.from_bytes(body, "big", signed=True)


def uint(tlv: Tlv, what: str) -> int:
    """A non-negative, minimally encoded INTEGER."""
    value = integer(tlv, what)
    if value < 0:
        raise DerError(f"{what}: negative INTEGER")
    return value


def oid(tlv: Tlv, what: str) -> bytes:
    """The content of an OBJECT IDENTIFIER, checked for well-formed arcs."""
    body = tlv.value
    if tlv.tag != OID or not body or body[-1] & 0x80:
        raise DerError(f"{what}: not an OBJECT IDENTIFIER")
    previous_ended = True
    for byte in body:
        if previous_ended and byte == 0x80:
            raise DerError(f"{what}: OBJECT IDENTIFIER arc is not minimally encoded")
        previous_ended = not byte & 0x80
    return body


def oid_text(body: bytes) -> str:
    """Dotted form of OID content, for messages."""
    arcs: list[int] = []
    value = 0
    for byte in body:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if not arcs:
        return ""
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in [first, arcs[0] - 40 * first, *arcs[1:]])


def bit_string_bytes(tlv: Tlv, what: str) -> bytes:
    """The octets of a BIT STRING that has no unused bits (keys and points always do)."""
    body = tlv.value
    if not body or body[0] != 0:
        raise DerError(f"{what}: BIT STRING with unused bits")
    return body[1:]


def encode(tag: int, content: bytes) -> bytes:
    """One DER element."""
    length = len(content)
    if length < 0x80:
        return bytes((tag, length)) + content
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(raw))) + raw + content


# --- PEM -------------------------------------------------------------------------------------


class PemBlock(NamedTuple):
    label: str
    headers: dict[str, str]
    der: bytes


def pem_blocks(data: bytes) -> list[PemBlock]:
    """Every ``-----BEGIN X-----`` ... ``-----END X-----`` block, in file order.

    Text between blocks is ignored (``openssl x509 -text`` output has some); inside a block the
    base64 must be strict, and a block that is not closed by its own END line is an error, since
    it means the file was cut short or glued together wrongly.
    """
    blocks: list[PemBlock] = []
    label: str | None = None
    headers: dict[str, str] = {}
    body: list[bytes] = []
    for raw_line in data.splitlines():
        line = raw_line.strip()
        if label is None:
            if line.startswith(b"-----BEGIN ") and line.endswith(b"-----") and len(line) > 16:
                label = _label(line[11:-5])
                headers, body = {}, []
            elif line.startswith(b"-----END "):
                raise DerError("PEM END line without a BEGIN line")
            continue
        if line.startswith(b"-----"):
            if line != b"-----END " + label.encode("ascii") + b"-----":
                raise DerError(f"PEM block {label!r} is not closed by its END line")
            try:
                der = binascii.a2b_base64(b"".join(body), strict_mode=True)
            except binascii.Error:
                raise DerError(f"PEM block {label!r} is not valid base64") from None
            blocks.append(PemBlock(label, headers, der))
            label = None
        elif b":" in line:
            if body:
                raise DerError(f"PEM block {label!r} has a header line inside its base64")
            key, _, value = line.partition(b":")
            headers[key.strip().decode("ascii", "replace")] = value.strip().decode(
                "ascii", "replace"
            )
        elif line:
            body.append(line)
    if label is not None:
        raise DerError(f"PEM block {label!r} has no END line")
    return blocks


def _label(raw: bytes) -> str:
    try:
        label = raw.decode("ascii")
    except UnicodeDecodeError:
        raise DerError("PEM label is not ASCII") from None
    if not label or label != label.strip():
        raise DerError("PEM label is malformed")
    return label


def pem_decode(data: bytes, *labels: str) -> list[bytes]:
    """The DER of every block labelled one of ``labels``, in file order (all blocks must parse)."""
    return [block.der for block in pem_blocks(data) if block.label in labels]


# --- certificates ----------------------------------------------------------------------------


class CertInfo(NamedTuple):
    """What TLSA and lineage code need from a certificate, as slices of its DER."""

    der: bytes  # the whole certificate (selector 0 input)
    spki: bytes  # SubjectPublicKeyInfo as encoded (selector 1 input)
    issuer: bytes  # issuer Name DER
    subject: bytes  # subject Name DER
    dns_names: tuple[str, ...]  # subjectAltName dNSName entries, in certificate order


def certificates_from_pem(data: bytes) -> list[CertInfo]:
    """Every certificate in a PEM file, in file order."""
    return [read_certificate(der) for der in pem_decode(data, *_CERT_LABELS)]


def read_certificate(data: bytes) -> CertInfo:
    """Walk an X.509 certificate completely and return its facts.

    Every TBSCertificate field is checked for shape, so a certificate that is cut, padded or
    glued together is refused here rather than yielding a record for half of it.
    """
    cert = read_single(data, SEQUENCE, "certificate")
    outer = cert.children()
    tbs = outer.next(SEQUENCE, "tbsCertificate").children()
    _algorithm_identifier(outer.next(SEQUENCE, "signatureAlgorithm"))
    outer.next(BIT_STRING, "signatureValue")
    outer.finish("certificate")

    version = 0
    explicit = tbs.optional(CTX0, "version")
    if explicit is not None:
        inner = explicit.children()
        version = uint(inner.next(INTEGER, "version"), "version")
        inner.finish("version")
        if version > 2:
            raise DerError(f"certificate version {version + 1} is not 1, 2 or 3")
    integer(tbs.next(INTEGER, "serialNumber"), "serialNumber")
    _algorithm_identifier(tbs.next(SEQUENCE, "signature"))
    issuer = tbs.next(SEQUENCE, "issuer")
    _name(issuer, "issuer")
    validity = tbs.next(SEQUENCE, "validity").children()
    _time(validity.next(None, "notBefore"), "notBefore")
    _time(validity.next(None, "notAfter"), "notAfter")
    validity.finish("validity")
    subject = tbs.next(SEQUENCE, "subject")
    _name(subject, "subject")
    spki = tbs.next(SEQUENCE, "subjectPublicKeyInfo")
    _spki_parts(spki)
    for tag, what in ((CTX1_PRIM, "issuerUniqueID"), (CTX2_PRIM, "subjectUniqueID")):
        unique = tbs.optional(tag, what)
        if unique is not None and version < 1:
            raise DerError(f"{what} in a version 1 certificate")
    dns_names: tuple[str, ...] = ()
    extensions = tbs.optional(CTX3, "extensions")
    if extensions is not None:
        if version < 2:
            raise DerError("extensions in a certificate older than version 3")
        dns_names = _extensions(extensions)
    tbs.finish("tbsCertificate")
    return CertInfo(cert.encoded, spki.encoded, issuer.encoded, subject.encoded, dns_names)


def _algorithm_identifier(tlv: Tlv) -> tuple[bytes, Tlv | None]:
    """(algorithm OID content, parameters element or None)."""
    reader = tlv.children()
    algorithm = oid(reader.next(OID, "algorithm"), "algorithm")
    params = reader.next(None, "parameters") if reader.more() else None
    reader.finish("AlgorithmIdentifier")
    return algorithm, params


def _name(tlv: Tlv, what: str) -> None:
    rdns = tlv.children()
    while rdns.more():
        attributes = rdns.next(SET, what).children()
        if not attributes.more():
            raise DerError(f"{what}: empty relative distinguished name")
        while attributes.more():
            pair = attributes.next(SEQUENCE, what).children()
            oid(pair.next(OID, what), what)
            pair.next(None, what)
            pair.finish(what)


def _time(tlv: Tlv, what: str) -> None:
    body = tlv.value
    size = {UTC_TIME: 13, GENERALIZED_TIME: 15}.get(tlv.tag)
    if size is None or len(body) != size or not body.endswith(b"Z") or not body[:-1].isdigit():
        raise DerError(f"{what}: not a UTCTime or GeneralizedTime")


def _spki_parts(tlv: Tlv) -> tuple[bytes, Tlv | None, Tlv]:
    """(algorithm OID content, parameters or None, subjectPublicKey BIT STRING)."""
    reader = tlv.children()
    algorithm, params = _algorithm_identifier(reader.next(SEQUENCE, "algorithm"))
    key = reader.next(BIT_STRING, "subjectPublicKey")
    if not key.value or key.value[0] > 7:
        raise DerError("subjectPublicKey: malformed BIT STRING")
    reader.finish("subjectPublicKeyInfo")
    return algorithm, params, key


def _extensions(tlv: Tlv) -> tuple[str, ...]:
    """Check every extension's shape; return the subjectAltName dNSNames."""
    outer = tlv.children()
    sequence = outer.next(SEQUENCE, "extensions")
    outer.finish("extensions")
    reader = sequence.children()
    if not reader.more():
        raise DerError("extensions: empty")
    seen: set[bytes] = set()
    names: tuple[str, ...] = ()
    while reader.more():
        extension = reader.next(SEQUENCE, "extension").children()
        ext_id = oid(extension.next(OID, "extnID"), "extnID")
        critical = extension.optional(BOOLEAN, "critical")
        if critical is not None and critical.value not in (b"\x00", b"\xff"):
            raise DerError("extension critical flag is not a DER BOOLEAN")
        value = extension.next(OCTET_STRING, "extnValue")
        extension.finish("extension")
        if ext_id in seen:
            raise DerError(f"extension {oid_text(ext_id)} appears twice")
        seen.add(ext_id)
        if ext_id == _OID_SAN:
            names = _san_dns_names(value.value)
    return names


def _san_dns_names(data: bytes) -> tuple[str, ...]:
    general_names = read_single(data, SEQUENCE, "subjectAltName").children()
    names: list[str] = []
    while general_names.more():
        name = general_names.next(None, "GeneralName")
        if name.tag not in _GENERAL_NAME_TAGS:
            raise DerError(f"subjectAltName: unknown GeneralName tag 0x{name.tag:02x}")
        if name.tag == CTX2_PRIM:
            try:
                names.append(name.value.decode("ascii"))
            except UnicodeDecodeError:
                raise DerError("subjectAltName: dNSName is not IA5String") from None
    return tuple(names)


# --- public keys -----------------------------------------------------------------------------


class KeyKind(NamedTuple):
    """The shape of a public key, in the words cryptography uses."""

    algorithm: str  # "rsa", "ec", "ed25519", "ed448" or "unknown"
    oid: str  # dotted algorithm OID
    rsa_bits: int | None = None  # RSA modulus length
    curve: str | None = None  # cryptography's curve.name; None for curves not known here


def spki_kind(spki: bytes) -> KeyKind:
    """What kind of key a DER SubjectPublicKeyInfo holds."""
    algorithm, params, key = _spki_parts(read_single(spki, SEQUENCE, "subjectPublicKeyInfo"))
    dotted = oid_text(algorithm)
    if algorithm == _OID_RSA:
        if params is not None and (params.tag != NULL or params.value):
            raise DerError("rsaEncryption parameters are not NULL")
        public = read_single(bit_string_bytes(key, "RSA key"), SEQUENCE, "RSAPublicKey")
        parts = public.children()
        modulus = uint(parts.next(INTEGER, "modulus"), "modulus")
        uint(parts.next(INTEGER, "publicExponent"), "publicExponent")
        parts.finish("RSAPublicKey")
        return KeyKind("rsa", dotted, rsa_bits=modulus.bit_length())
    if algorithm == _OID_EC:
        curve = None
        if params is not None and params.tag == OID:
            known = _CURVES.get(oid(params, "namedCurve"))
            curve = known[0] if known else None
        return KeyKind("ec", dotted, curve=curve)
    if algorithm in _EDWARDS:
        return KeyKind(_EDWARDS[algorithm][0], dotted)
    return KeyKind("unknown", dotted)


def _spki(algorithm: bytes, params: bytes, public: bytes) -> bytes:
    """SubjectPublicKeyInfo DER from the algorithm OID content, encoded params, key octets."""
    identifier = encode(SEQUENCE, encode(OID, algorithm) + params)
    return encode(SEQUENCE, identifier + encode(BIT_STRING, b"\x00" + public))


# --- private keys ----------------------------------------------------------------------------


def private_key_spki(data: bytes) -> bytes | None:
    """The SubjectPublicKeyInfo DER of the public half a private key file carries.

    ``data`` is PEM (PKCS#8 ``PRIVATE KEY``, ``RSA PRIVATE KEY``, ``EC PRIVATE KEY``) or DER
    (PKCS#8, PKCS#1 or RFC 5915). Returns None when the key is readable here but its public half
    is not in the file (an Ed25519 PKCS#8 v1 key, an EC key without its point, a compressed
    point, an algorithm not known here): only key arithmetic could give it. Raises
    :class:`EncryptedKeyError` for an encrypted key, :class:`DerError` for anything else.
    """
    if b"-----BEGIN" not in data:
        return _der_key_spki(data)
    blocks = pem_blocks(data)
    for block in blocks:
        if block.label == _ENCRYPTED_LABEL or "ENCRYPTED" in block.headers.get("Proc-Type", ""):
            raise EncryptedKeyError("the private key is encrypted")
    keys = [block for block in blocks if block.label in _KEY_LABELS]
    if len(keys) != 1:
        raise DerError(f"expected one private key block, found {len(keys)}")
    key = keys[0]
    if key.headers:
        raise DerError("unexpected PEM headers in the private key block")
    if key.label == "PRIVATE KEY":
        return _pkcs8_spki(key.der)
    if key.label == "RSA PRIVATE KEY":
        return _rsa_spki(key.der)
    return _ec_spki(key.der, None)


def _der_key_spki(data: bytes) -> bytes | None:
    """DER input: PKCS#8, PKCS#1 or RFC 5915, told apart by the second element's tag."""
    outer = read_single(data, SEQUENCE, "private key")
    reader = outer.children()
    first = reader.next(None, "private key")
    second = reader.next(None, "private key")
    if first.tag == SEQUENCE and second.tag == OCTET_STRING and not reader.more():
        raise EncryptedKeyError("the private key is encrypted")  # EncryptedPrivateKeyInfo
    if first.tag != INTEGER:
        raise DerError("not a private key")
    if second.tag == SEQUENCE:
        return _pkcs8_spki(data)
    if second.tag == INTEGER:
        return _rsa_spki(data)
    if second.tag == OCTET_STRING:
        return _ec_spki(data, None)
    raise DerError("not a private key")


def _pkcs8_spki(data: bytes) -> bytes | None:
    """PKCS#8 PrivateKeyInfo / OneAsymmetricKey (RFC 5958)."""
    reader = read_single(data, SEQUENCE, "PrivateKeyInfo").children()
    version = uint(reader.next(INTEGER, "version"), "version")
    if version > 1:
        raise DerError(f"PrivateKeyInfo version {version} is not 0 or 1")
    algorithm, params = _algorithm_identifier(reader.next(SEQUENCE, "privateKeyAlgorithm"))
    private = reader.next(OCTET_STRING, "privateKey").value
    reader.optional(CTX0, "attributes")
    public = reader.optional(CTX1_PRIM, "publicKey")
    reader.finish("PrivateKeyInfo")
    if public is not None and version != 1:
        raise DerError("publicKey in a version 0 PrivateKeyInfo")
    if algorithm == _OID_RSA:
        if params is not None and (params.tag != NULL or params.value):
            raise DerError("rsaEncryption parameters are not NULL")
        return _rsa_spki(private)
    if algorithm == _OID_EC:
        if params is None or params.tag != OID:
            return None  # explicit curve parameters: leave them to cryptography
        outer_point = bit_string_bytes(public, "publicKey") if public is not None else None
        return _ec_spki(private, oid(params, "namedCurve"), outer_point)
    if algorithm in _EDWARDS:
        size = _EDWARDS[algorithm][1]
        if params is not None:
            raise DerError("Edwards curve keys take no parameters")
        if len(read_single(private, OCTET_STRING, "CurvePrivateKey").value) != size:
            raise DerError("Edwards curve private key has the wrong length")
        if public is None:
            return None
        point = bit_string_bytes(public, "publicKey")
        if len(point) != size:
            raise DerError("Edwards curve public key has the wrong length")
        return _spki(algorithm, b"", point)
    return None


def _rsa_spki(data: bytes) -> bytes | None:
    """PKCS#1 RSAPrivateKey: the SPKI from modulus and public exponent."""
    reader = read_single(data, SEQUENCE, "RSAPrivateKey").children()
    version = uint(reader.next(INTEGER, "version"), "version")
    if version > 1:
        raise DerError(f"RSAPrivateKey version {version} is not 0 or 1")
    fields = [reader.next(INTEGER, "RSAPrivateKey") for _ in range(8)]
    values = [uint(tlv, "RSAPrivateKey") for tlv in fields]
    if version == 1:
        return None  # multi-prime: rare enough to leave to cryptography
    reader.finish("RSAPrivateKey")
    modulus, exponent, _, prime1, prime2 = values[:5]
    # Not key arithmetic, just a sanity check that catches a file damaged inside the private
    # part while the public part survived, which the SPKI comparison alone would miss.
    if modulus < 3 or exponent < 3 or prime1 * prime2 != modulus:
        raise DerError("RSAPrivateKey is inconsistent")
    public = encode(SEQUENCE, fields[0].encoded + fields[1].encoded)
    return _spki(_OID_RSA, encode(NULL, b""), public)


def _ec_spki(data: bytes, curve: bytes | None, outer_point: bytes | None = None) -> bytes | None:
    """RFC 5915 ECPrivateKey: the SPKI from its [1] publicKey and the named curve."""
    reader = read_single(data, SEQUENCE, "ECPrivateKey").children()
    if uint(reader.next(INTEGER, "version"), "version") != 1:
        raise DerError("ECPrivateKey version is not 1")
    private = reader.next(OCTET_STRING, "privateKey").value
    params = reader.optional(CTX0, "parameters")
    public = reader.optional(CTX1, "publicKey")
    reader.finish("ECPrivateKey")
    if params is not None:
        inner = params.children()
        if inner.peek() != OID:
            return None  # explicit curve parameters
        named = oid(inner.next(OID, "namedCurve"), "namedCurve")
        inner.finish("parameters")
        if curve is not None and named != curve:
            raise DerError("ECPrivateKey names another curve than its PrivateKeyInfo")
        curve = named
    if curve is None:
        raise DerError("ECPrivateKey without a curve")
    point = outer_point
    if public is not None:
        bits = public.children()
        point = bit_string_bytes(bits.next(BIT_STRING, "publicKey"), "publicKey")
        bits.finish("publicKey")
    known = _CURVES.get(curve)
    if known is None:
        return None
    size = known[1]
    if not 0 < len(private) <= size:
        raise DerError("ECPrivateKey private key has the wrong length")
    # cryptography writes the uncompressed point; a compressed one would give other bytes.
    if point is None or point[:1] != b"\x04":
        return None
    if len(point) != 1 + 2 * size:
        raise DerError("EC public key has the wrong length for its curve")
    return _spki(_OID_EC, encode(OID, curve), point)
