"""TSIG keys from BIND key files, so users point us at the file named already includes.

A key file is what ``tsig-keygen`` prints: ``key "name" { algorithm hmac-sha256; secret "..."; };``,
possibly several keys and the three comment styles of named.conf. We parse just that grammar
rather than asking users to copy the secret into our settings, where it would sit in one more
place. The secret is a credential: it is kept out of ``repr``, logs and every error message,
which therefore say *where* a problem is (file, line, key name) but never quote the value.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import stat
from pathlib import Path

import dns.exception
import dns.name
import dns.tsig

from certbot_dane_tlsa.errors import SettingsError
from certbot_dane_tlsa.lite_dataclasses import dataclass, field

log = logging.getLogger(__name__)

# BIND's algorithm keywords and dnspython's algorithm names for them.
ALGORITHMS: dict[str, dns.name.Name] = {
    "hmac-sha256": dns.tsig.HMAC_SHA256,
    "hmac-sha384": dns.tsig.HMAC_SHA384,
    "hmac-sha512": dns.tsig.HMAC_SHA512,
    "hmac-sha224": dns.tsig.HMAC_SHA224,
    "hmac-sha1": dns.tsig.HMAC_SHA1,
}
WEAK_ALGORITHMS = frozenset({"hmac-sha1"})
REFUSED_ALGORITHMS = frozenset({"hmac-md5"})


@dataclass(frozen=True)
class TsigKey:
    """One key; ``secret`` is excluded from ``repr`` so a traceback cannot leak it."""

    name: dns.name.Name
    algorithm: str
    secret: bytes = field(repr=False)

    @property
    def algorithm_name(self) -> dns.name.Name:
        return ALGORITHMS[self.algorithm]

    def to_dnspython(self) -> dns.tsig.Key:
        return dns.tsig.Key(self.name, self.secret, self.algorithm_name)

    def keyring(self) -> dict[dns.name.Name, dns.tsig.Key]:
        return {self.name: self.to_dnspython()}

    def describe(self) -> str:
        """Safe to show: name and algorithm, never the secret."""
        return f"{self.name.to_text(omit_final_dot=True)} ({self.algorithm})"


# --- tokenizer -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    text: str
    line: int
    quoted: bool = False


class _KeyFileError(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def _tokens(text: str) -> list[_Token]:
    """Split named.conf syntax into words, quoted strings and the punctuation ``{ } ;``."""
    tokens: list[_Token] = []
    i, line, n = 0, 1, len(text)
    while i < n:
        ch = text[i]
        if ch == "\n":
            line += 1
            i += 1
        elif ch.isspace():
            i += 1
        elif ch == "#" or text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise _KeyFileError(line, "unterminated /* comment")
            line += text.count("\n", i, end)
            i = end + 2
        elif ch in "{};":
            tokens.append(_Token(ch, line))
            i += 1
        elif ch == '"':
            start_line = line
            j = i + 1
            chars: list[str] = []
            while j < n and text[j] != '"':
                if text[j] == "\\" and j + 1 < n:
                    j += 1
                if text[j] == "\n":
                    line += 1
                chars.append(text[j])
                j += 1
            if j >= n:
                raise _KeyFileError(start_line, "unterminated quoted string")
            tokens.append(_Token("".join(chars), start_line, quoted=True))
            i = j + 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in '{};"#':
                if text.startswith("//", j) or text.startswith("/*", j):
                    break
                j += 1
            tokens.append(_Token(text[i:j], line))
            i = j
    return tokens


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.pos = 0

    def _last_line(self) -> int:
        return self.tokens[-1].line if self.tokens else 1

    def peek(self) -> _Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, what: str) -> _Token:
        token = self.peek()
        if token is None:
            raise _KeyFileError(self._last_line(), f"file ends where {what} was expected")
        self.pos += 1
        return token

    def expect(self, punct: str) -> None:
        token = self.take(f"'{punct}'")
        if token.quoted or token.text != punct:
            # The token may be a secret: name only what we expected.
            raise _KeyFileError(token.line, f"expected '{punct}'")

    def skip_statement(self) -> None:
        """Skip a statement we do not need (up to its ``;`` at brace depth zero)."""
        depth = 0
        while True:
            token = self.take("';'")
            if token.quoted:
                continue
            if token.text == "{":
                depth += 1
            elif token.text == "}":
                depth -= 1
            elif token.text == ";" and depth <= 0:
                return


def _decode_secret(token: _Token, key_name: str) -> bytes:
    compact = "".join(token.text.split())
    try:
        secret = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise _KeyFileError(
            token.line, f'key "{key_name}": the secret is not valid base64'
        ) from None
    if not secret:
        raise _KeyFileError(token.line, f'key "{key_name}": the secret is empty')
    return secret


def _parse_key(parser: _Parser, start: _Token) -> TsigKey:
    name_token = parser.take("a key name")
    if name_token.text in ("{", "}", ";") and not name_token.quoted:
        raise _KeyFileError(name_token.line, "key statement without a name")
    key_name = name_token.text
    try:
        name = dns.name.from_text(key_name)
    except dns.exception.DNSException:
        raise _KeyFileError(name_token.line, f'"{key_name}" is not a valid key name') from None
    parser.expect("{")
    algorithm: str | None = None
    secret: bytes | None = None
    while True:
        token = parser.take("'}'")
        if token.text == "}" and not token.quoted:
            break
        keyword = token.text.lower()
        if keyword == "algorithm":
            value = parser.take("an algorithm")
            algorithm = value.text.lower()
            if algorithm in REFUSED_ALGORITHMS:
                raise _KeyFileError(
                    value.line,
                    f'key "{key_name}" uses {algorithm}, which is broken; '
                    "make a new key with tsig-keygen -a hmac-sha256",
                )
            if algorithm not in ALGORITHMS:
                raise _KeyFileError(
                    value.line,
                    f'key "{key_name}": unsupported algorithm {value.text!r} '
                    f"(use one of {', '.join(ALGORITHMS)})",
                )
            parser.expect(";")
        elif keyword == "secret":
            secret = _decode_secret(parser.take("a secret"), key_name)
            parser.expect(";")
        else:
            raise _KeyFileError(token.line, f'key "{key_name}": unexpected clause')
    parser.expect(";")
    if algorithm is None:
        raise _KeyFileError(start.line, f'key "{key_name}" has no algorithm')
    if secret is None:
        raise _KeyFileError(start.line, f'key "{key_name}" has no secret')
    return TsigKey(name, algorithm, secret)


def parse_keys(text: str, source: str = "<key file>") -> list[TsigKey]:
    """Every ``key`` statement of ``text``; other statements (e.g. ``options``) are skipped."""
    try:
        parser = _Parser(_tokens(text))
        keys: list[TsigKey] = []
        while (token := parser.peek()) is not None:
            parser.pos += 1
            if token.text.lower() == "key" and not token.quoted:
                keys.append(_parse_key(parser, token))
            else:
                parser.pos -= 1
                parser.skip_statement()
    except _KeyFileError as exc:
        raise SettingsError(f"{source}:{exc.line}: {exc.message}") from None
    seen: set[dns.name.Name] = set()
    for key in keys:
        if key.name in seen:
            raise SettingsError(f"{source}: key {key.describe()} is defined twice")
        seen.add(key.name)
    return keys


def _check_permissions(path: Path, mode: int) -> None:
    if mode & stat.S_IWOTH:
        raise SettingsError(
            f"TSIG key file {path} is writable by everyone; fix it with chmod 600 {path}"
        )
    if mode & stat.S_IROTH:
        log.warning("TSIG key file %s is readable by everyone; chmod o-r %s", path, path)


def load_key(path: Path, name: str | None = None) -> TsigKey:
    """The key called ``name`` in ``path``, or its only key when ``name`` is not given."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise SettingsError(f"cannot read TSIG key file {path}: {exc.strerror}") from None
    try:
        _check_permissions(path, os.fstat(fd).st_mode)
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read()
    finally:
        os.close(fd)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SettingsError(f"TSIG key file {path} is not UTF-8 text") from None
    keys = parse_keys(text, str(path))
    if not keys:
        raise SettingsError(f"TSIG key file {path} holds no key statement")
    if name is None:
        if len(keys) > 1:
            names = ", ".join(k.describe() for k in keys)
            raise SettingsError(
                f"TSIG key file {path} holds several keys ({names}); set tsig_key_name"
            )
        key = keys[0]
    else:
        try:
            wanted = dns.name.from_text(name)
        except dns.exception.DNSException:
            raise SettingsError(f"tsig_key_name: {name!r} is not a valid key name") from None
        matches = [k for k in keys if k.name == wanted]
        if not matches:
            names = ", ".join(k.describe() for k in keys)
            raise SettingsError(f"TSIG key file {path} has no key {name!r} (it has {names})")
        key = matches[0]
    if key.algorithm in WEAK_ALGORITHMS:
        log.warning(
            "TSIG key %s uses %s, which is weak; prefer tsig-keygen -a hmac-sha256",
            key.describe(),
            key.algorithm,
        )
    return key
