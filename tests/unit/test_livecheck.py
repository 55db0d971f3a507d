"""Live check against real TLS servers started in-process on 127.0.0.1.

The servers are small but real: Python's ssl does the handshake with a certbot-shaped
fullchain/privkey, and the plaintext part speaks just enough SMTP/IMAP/POP3 for STARTTLS.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from certbot_dane_tlsa.errors import VerificationError
from certbot_dane_tlsa.lineage import Lineage
from certbot_dane_tlsa.livecheck import TLS_MODES, chain_matches, default_tls_mode, fetch_chain
from certbot_dane_tlsa.records import TlsaParams, TlsaRecord
from certbot_dane_tlsa.tlsa import Material, derive
from tests.helpers.pki import KEY_TYPES, Pki, make_key, make_pki, write_lineage

NAME = "mx.example.test"


class Server:
    """A loopback TCP server running ``dialogue`` on each connection in a thread."""

    def __init__(self, lineage: Lineage, dialogue: Callable[[Server, socket.socket], None]):
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(lineage.fullchain, lineage.privkey)
        self.context.sni_callback = self._sni
        self.dialogue = dialogue
        self.sni: list[str | None] = []
        self.received: list[bytes] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.sock.settimeout(0.05)  # so the loop notices close() quickly
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _sni(self, _obj: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        self.sni.append(name)

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                # The client hangs up as soon as it has the chain.
                with contextlib.suppress(OSError, ssl.SSLError):
                    self.dialogue(self, conn)

    def readline(self, conn: socket.socket) -> bytes:
        data = b""
        while not data.endswith(b"\n"):
            chunk = conn.recv(1)
            if not chunk:
                break
            data += chunk
        self.received.append(data)
        return data

    def tls(self, conn: socket.socket) -> None:
        with self.context.wrap_socket(conn, server_side=True) as tls:
            tls.recv(1)  # wait for the client to close

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


def smtp(server: Server, conn: socket.socket) -> None:
    conn.sendall(b"220-mx.example.test ESMTP test\r\n220 second greeting line\r\n")
    assert server.readline(conn).startswith(b"EHLO ")
    conn.sendall(b"250-mx.example.test\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n")
    assert server.readline(conn) == b"STARTTLS\r\n"
    conn.sendall(b"220 2.0.0 Ready to start TLS\r\n")
    server.tls(conn)


def imap(server: Server, conn: socket.socket) -> None:
    conn.sendall(b"* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n")
    tag = server.readline(conn).split()[0]
    conn.sendall(b"* CAPABILITY IMAP4rev1\r\n" + tag + b" OK Begin TLS negotiation now\r\n")
    server.tls(conn)


def pop3(server: Server, conn: socket.socket) -> None:
    conn.sendall(b"+OK POP3 ready\r\n")
    assert server.readline(conn) == b"STLS\r\n"
    conn.sendall(b"+OK Begin TLS\r\n")
    server.tls(conn)


def implicit(server: Server, conn: socket.socket) -> None:
    server.tls(conn)


Dialogue = Callable[["Server", socket.socket], None]
Serve = Callable[[Dialogue], "Server"]

DIALOGUES: dict[str, Dialogue] = {
    "starttls-smtp": smtp,
    "starttls-imap": imap,
    "starttls-pop3": pop3,
    "tls": implicit,
}


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki("p256", names=(NAME,))


@pytest.fixture(scope="module")
def lineage(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Lineage:
    return Lineage.from_dir(write_lineage(tmp_path_factory.mktemp("le"), NAME, pki))


@pytest.fixture
def serve(lineage: Lineage) -> Iterator[Serve]:
    servers: list[Server] = []

    def start(dialogue: Dialogue) -> Server:
        server = Server(lineage, dialogue)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def test_default_modes() -> None:
    assert [default_tls_mode(p) for p in (25, 587, 143, 110)] == [
        "starttls-smtp",
        "starttls-smtp",
        "starttls-imap",
        "starttls-pop3",
    ]
    assert {default_tls_mode(p) for p in (465, 993, 995, 443, 5223)} == {"tls"}
    assert set(TLS_MODES) == set(DIALOGUES)


@pytest.mark.parametrize("mode", TLS_MODES)
def test_fetch_chain_returns_leaf_and_intermediate(serve: Serve, pki: Pki, mode: str) -> None:
    server = serve(DIALOGUES[mode])
    chain = fetch_chain("127.0.0.1", server.port, mode=mode, server_name=NAME + ".", timeout=5)
    assert chain == [pki.leaf, pki.intermediate]
    assert server.sni == [NAME]


def test_smtp_client_sends_an_address_literal_in_ehlo(serve: Serve) -> None:
    server = serve(smtp)
    fetch_chain("127.0.0.1", server.port, mode="starttls-smtp", server_name=NAME, timeout=5)
    assert server.received[0] == b"EHLO [127.0.0.1]\r\n"


@pytest.mark.parametrize("kind", KEY_TYPES)
def test_every_key_type_over_starttls(tmp_path: Path, kind: str) -> None:
    pki = make_pki(kind, names=(NAME,))
    lineage = Lineage.from_dir(write_lineage(tmp_path, NAME, pki))
    server = Server(lineage, smtp)
    try:
        chain = fetch_chain("127.0.0.1", server.port, mode="starttls-smtp", server_name=NAME)
    finally:
        server.close()
    material = lineage.material()
    records = [derive(material, TlsaParams(3, 1, 1)), derive(material, TlsaParams(2, 1, 1))]
    assert chain_matches(chain, records) == records


def test_chain_matches_true_and_wrong_records(serve: Serve, lineage: Lineage) -> None:
    server = serve(smtp)
    chain = fetch_chain("127.0.0.1", server.port, mode="starttls-smtp", server_name=NAME)
    material = lineage.material()
    good = [derive(material, TlsaParams(*p)) for p in ((3, 1, 1), (2, 1, 1), (3, 0, 1))]
    assert chain_matches(chain, good) == good
    other = make_pki("p256", names=(NAME,))
    wrong = derive(Material(other.leaf, (other.intermediate,), None), TlsaParams(3, 1, 1))
    assert chain_matches(chain, [wrong]) == []
    assert chain_matches(chain, [wrong, good[0]]) == [good[0]]
    # One flipped bit is a mismatch.
    flipped = TlsaRecord(3, 1, 1, bytes([good[0].data[0] ^ 1]) + good[0].data[1:])
    assert chain_matches(chain, [flipped]) == []


def test_usage_semantics(pki: Pki) -> None:
    chain = [pki.leaf, pki.intermediate]
    material = Material(pki.leaf, (pki.intermediate,), None)
    leaf_311 = derive(material, TlsaParams(3, 1, 1))
    issuer_211 = derive(material, TlsaParams(2, 1, 1))
    # Usage 3 is about the leaf only; the same data under usage 2 does not match.
    assert chain_matches(chain, [TlsaRecord(2, 1, 1, leaf_311.data)]) == []
    # Usage 2 data for the issuer does not match as usage 3.
    assert chain_matches(chain, [TlsaRecord(3, 1, 1, issuer_211.data)]) == []
    # PKIX usages: same certificates, no path validation.
    assert chain_matches(chain, [TlsaRecord(1, 1, 1, leaf_311.data)]) != []
    assert chain_matches(chain, [TlsaRecord(0, 1, 1, issuer_211.data)]) != []
    # A root the server does not present cannot be matched from the chain...
    root_211 = derive(Material(pki.intermediate, (pki.root,), None), TlsaParams(2, 1, 1))
    assert chain_matches(chain, [root_211]) == []
    # ...but it can when presented, since the leaf chains up to it.
    assert chain_matches([*chain, pki.root], [root_211]) == [root_211]
    # An unrelated CA in the presented chain is not a trust anchor for this leaf.
    other = make_pki("p256", tag="other ")
    other_211 = derive(Material(other.leaf, (other.intermediate,), None), TlsaParams(2, 1, 1))
    assert chain_matches([pki.leaf, other.intermediate, pki.intermediate], [other_211]) == []
    # Unusable parameters never match; an empty chain matches nothing.
    assert chain_matches(chain, [TlsaRecord(3, 7, 1, leaf_311.data)]) == []
    assert chain_matches([], [leaf_311]) == []


def test_leaf_only_chain_fails_usage_2_but_not_3(pki: Pki) -> None:
    material = Material(pki.leaf, (pki.intermediate,), None)
    records = [derive(material, TlsaParams(3, 1, 1)), derive(material, TlsaParams(2, 1, 1))]
    assert chain_matches([pki.leaf], records) == records[:1]


# ---- failures, each with the server's own words in the message -----------------------------


def check_failure(port: int, mode: str, *needles: str) -> str:
    with pytest.raises(VerificationError) as exc:
        fetch_chain("127.0.0.1", port, mode=mode, server_name=NAME, timeout=5)
    message = str(exc.value)
    assert "\n" not in message
    assert f"127.0.0.1:{port}" in message
    for needle in needles:
        assert needle in message
    return message


def test_connection_refused() -> None:
    sock = socket.create_server(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    sock.close()
    check_failure(port, "tls", "cannot connect")


def test_smtp_greeting_refused(serve: Serve) -> None:
    def dialogue(server: Server, conn: socket.socket) -> None:
        conn.sendall(b"554 5.3.2 no service for you\r\n")

    check_failure(serve(dialogue).port, "starttls-smtp", "554 5.3.2 no service for you")


def test_no_starttls_offered(serve: Serve) -> None:
    def dialogue(server: Server, conn: socket.socket) -> None:
        conn.sendall(b"220 hi\r\n")
        server.readline(conn)
        conn.sendall(b"250-mx.example.test\r\n250 SIZE 1000\r\n")
        server.readline(conn)

    check_failure(serve(dialogue).port, "starttls-smtp", "does not offer STARTTLS", "250 SIZE")


def test_starttls_refused(serve: Serve) -> None:
    def dialogue(server: Server, conn: socket.socket) -> None:
        conn.sendall(b"220 hi\r\n")
        server.readline(conn)
        conn.sendall(b"250-mx\r\n250 STARTTLS\r\n")
        server.readline(conn)
        conn.sendall(b"454 4.7.0 TLS not available due to local problem\r\n")

    check_failure(serve(dialogue).port, "starttls-smtp", "STARTTLS refused", "454 4.7.0")


def test_plaintext_injected_after_starttls_is_rejected(serve: Serve) -> None:
    def dialogue(server: Server, conn: socket.socket) -> None:
        conn.sendall(b"220 hi\r\n")
        server.readline(conn)
        conn.sendall(b"250 STARTTLS\r\n")
        server.readline(conn)
        conn.sendall(b"220 go ahead\r\n250 injected\r\n")
        server.readline(conn)

    check_failure(serve(dialogue).port, "starttls-smtp", "before the TLS handshake")


def test_server_hangs_up(serve: Serve) -> None:
    def dialogue(server: Server, conn: socket.socket) -> None:
        conn.sendall(b"220-partial")

    check_failure(serve(dialogue).port, "starttls-smtp", "closed the connection", "220-partial")


def test_imap_starttls_refused(serve: Serve) -> None:
    def dialogue(server: Server, conn: socket.socket) -> None:
        conn.sendall(b"* OK ready\r\n")
        tag = server.readline(conn).split()[0]
        conn.sendall(tag + b" BAD STARTTLS disabled\r\n")

    check_failure(serve(dialogue).port, "starttls-imap", "BAD STARTTLS disabled")


def test_pop3_stls_refused(serve: Serve) -> None:
    def dialogue(server: Server, conn: socket.socket) -> None:
        conn.sendall(b"+OK ready\r\n")
        server.readline(conn)
        conn.sendall(b"-ERR no TLS here\r\n")

    check_failure(serve(dialogue).port, "starttls-pop3", "-ERR no TLS here")


def test_plaintext_server_on_implicit_tls_port(serve: Serve) -> None:
    def dialogue(server: Server, conn: socket.socket) -> None:
        conn.sendall(b"220 I speak plain SMTP\r\n" * 4)
        server.readline(conn)

    check_failure(serve(dialogue).port, "tls", "TLS handshake failed")


def test_silent_server_times_out(serve: Serve) -> None:
    def dialogue(server: Server, conn: socket.socket) -> None:
        server.readline(conn)  # never greets

    with pytest.raises(VerificationError, match="timed out"):
        fetch_chain(
            "127.0.0.1", serve(dialogue).port, mode="starttls-smtp", server_name=NAME, timeout=0.5
        )


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(VerificationError, match="starttls-smtp"):
        fetch_chain("127.0.0.1", 1, mode="starttls-xmpp", server_name=NAME)


# ---- a real Postfix -------------------------------------------------------------------------


@pytest.fixture
def open_tmp() -> Iterator[Path]:
    """A temporary directory the postfix user can traverse (pytest's tmp_path is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="dane-livecheck-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.services
def test_real_postfix_starttls_and_key_change_after_reload(open_tmp: Path) -> None:

    from tests.services.postfix import PostfixInstance, wait_until_presented

    pki = make_pki("p256", names=(NAME,))
    lineage = Lineage.from_dir(write_lineage(open_tmp / "le", NAME, pki))
    postfix = PostfixInstance(
        open_tmp / "postfix", hostname=NAME, key=lineage.privkey, fullchain=lineage.fullchain
    )
    postfix.start()
    try:
        old = derive(lineage.material(), TlsaParams(3, 1, 1))
        issuer = derive(lineage.material(), TlsaParams(2, 1, 1))
        chain = fetch_chain("127.0.0.1", postfix.port, mode="starttls-smtp", server_name=NAME)
        assert chain == [pki.leaf, pki.intermediate]
        assert chain_matches(chain, [old, issuer]) == [old, issuer]
        # Renewal with a new key: after a reload Postfix presents it, and the old 3 1 1 no
        # longer matches; this is the mismatch the live check exists to catch.
        write_lineage(open_tmp / "le", NAME, pki.reissue(leaf_key=make_key("p256")))
        postfix.reload()
        new = derive(lineage.material(), TlsaParams(3, 1, 1))
        # `postfix reload` returns before the old smtpd processes are gone: poll.
        renewed_leaf = lineage.material().leaf
        wait_until_presented("127.0.0.1", postfix.port, renewed_leaf.der)
        chain = fetch_chain("127.0.0.1", postfix.port, mode="starttls-smtp", server_name=NAME)
        assert chain[0] != pki.leaf
        assert chain_matches(chain, [old, new, issuer]) == [new, issuer]
    finally:
        postfix.stop()


def test_every_derived_record_matches_the_chain_it_came_from(pki: Pki) -> None:
    material = Material(pki.leaf, (pki.intermediate,), pki.leaf_key)
    params = [TlsaParams(u, s, m) for u in range(4) for s in range(2) for m in range(3)]
    records = [derive(material, p) for p in params]
    assert chain_matches([pki.leaf, pki.intermediate], records) == records
    # Without the intermediate only the leaf usages survive.
    assert chain_matches([pki.leaf], records) == [r for r in records if r.usage in (1, 3)]
