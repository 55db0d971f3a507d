"""Pass 1 over a zone file: find the few byte ranges the editor cares about.

A zone may hold a million records, of which the editor needs a handful: the SOA, the TLSA
records at the owners it manages, and the records of the hosts next to which new ones go. So the
file is read in large binary chunks, and C-speed searches (``bytes.find`` and anchored regular
expressions) pick out the lines that can matter: lines with ``tlsa``/``type``/``soa``, a
directive, a parenthesis, a backslash, an odd number of quotes, or an owner that is one of the
tracked names written relative to the current ``$ORIGIN``, absolute or as ``@``. Only those go
through the tokenizer. Lines in between are simple one-line records whose only effect is that an
explicit owner there is some untracked name, which a single anchored search finds.

While no ``$TTL`` is in effect, an omitted TTL depends on the previous record (RFC 1035), so
the scanner then tokenizes every line; ``full=True`` forces that everywhere, which is how the
tests check that the fast path reads a file exactly as the line-by-line path does. For the same
reason the scanner notes, after each managed record and each anchor, the record that follows
(its :class:`Follower`): an edit there can change what that record inherits.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Collection, Mapping
from functools import partial
from pathlib import Path
from typing import BinaryIO

from certbot_dane_tlsa import dnsname
from certbot_dane_tlsa.dnsname import Name
from certbot_dane_tlsa.errors import ZoneError, ZoneSyntaxError
from certbot_dane_tlsa.lite_dataclasses import dataclass, field, replace
from certbot_dane_tlsa.records import TlsaParams, TlsaRecord
from certbot_dane_tlsa.zonefile.presentation import parse_class, parse_tlsa, parse_ttl
from certbot_dane_tlsa.zonefile.tokens import QUOTED, Record, Token, tokenize_record

CHUNK_SIZE = 4 << 20
_MAX_INCLUDE_DEPTH = 16
_TLSA = 52
_SOA = 6
_IN = 1

# Substrings (searched in the lower-cased chunk) that make a line worth tokenizing.
_KEYWORDS = (b"tlsa", b"type", b"soa", b"(", b")", b"\\")
# A line whose first byte is not white space or ';': an explicit owner.
_EXPLICIT_RE = re.compile(rb"^[^\s;]", re.M)
# The first line that holds a record (not blank, not only a comment).
_RECORD_RE = re.compile(rb"^[ \t\f\v]*[^\s;]", re.M)
# A record line with a blank owner, up to and including its end of line.
_BLANK_RECORD_RE = re.compile(rb"^[ \t\f\v]+[^\s;][^\n]*\n?", re.M)
# Lines (of a string reduced to quotes and newlines) with an odd number of quotes.
_ODD_QUOTES_RE = re.compile(rb'^"(?:"")*$', re.M)
_NOT_QUOTE_OR_NL = bytes(c for c in range(256) if c not in (0x0A, 0x22))
_OWNER_END = rb'(?=[ \t\r\f\v\n;()"])'
_GENERATE_RE = re.compile(r"\\\$|\$\{(-?\d+)(?:,(\d+)(?:,([doxXnN]))?)?\}|\$")


@dataclass(frozen=True)
class Follower:
    """The first record after an edit point, told in terms of the TTL it inherits.

    Without ``$TTL`` a record that omits its TTL takes the previous record's, so adding or
    removing a line with a TTL in front of it would change its TTL; the editor then writes the
    TTL it had into it, at ``ttl_at``.
    """

    offset: int  # start of the record's line (or of a $GENERATE line)
    ttl_at: int  # where a TTL can go: just after the owner field
    sep: bytes  # white space to put in front of that TTL
    explicit_ttl: bool
    inherited: int | None  # the TTL it takes when it states none
    inherits: bool  # no $TTL in effect: an omitted TTL is the previous record's
    main: bool  # in the main zone file (not in an $INCLUDEd one), so it can be edited
    file: Path
    # An $INCLUDE with records comes between the edit point and this record. BIND then gives
    # an omitted TTL from the included file's last record, dnspython from before the $INCLUDE.
    after_include: bool = False


@dataclass
class Point:
    """A byte offset in the main file, with what a record written there would inherit."""

    offset: int
    origin: Name
    implicit_ttl: int | None
    inherits: bool = False  # see Follower.inherits
    # The first record after this point in the main file (None: none before its end), and
    # the first record of each $INCLUDEd file in between.
    follower: Follower | None = None
    included: list[Follower] = field(default_factory=list)


@dataclass
class TlsaSpot:
    """One TLSA record at a collected owner, as found in the file."""

    owner: Name
    record: TlsaRecord
    file: Path
    main: bool
    start: int  # offset of the record's first line
    end: int  # offset after its last line (end of line included)
    explicit_owner: bool
    ttl_text: bytes | None
    ttl: int
    origin: Name
    implicit_ttl: int | None
    # Where a TTL can go in this record, and whether its own omitted TTL is inherited.
    ttl_at: int = 0
    ttl_sep: bytes = b" "
    inherits: bool = False
    # The next record line, when it has a blank owner (it inherits this record's owner).
    next_blank: Point | None = None
    # As in Point.
    follower: Follower | None = None
    included: list[Follower] = field(default_factory=list)

    def as_follower(self) -> Follower:
        return Follower(
            offset=self.start,
            ttl_at=self.ttl_at,
            sep=self.ttl_sep,
            explicit_ttl=self.ttl_text is not None,
            inherited=self.implicit_ttl,
            inherits=self.inherits,
            main=self.main,
            file=self.file,
        )


@dataclass
class SoaSpot:
    file: Path
    main: bool
    serial: int
    serial_start: int
    serial_end: int
    minimum: int


@dataclass
class ScanResult:
    tlsa: list[TlsaSpot] = field(default_factory=list)
    soas: list[SoaSpot] = field(default_factory=list)
    anchor_ends: dict[Name, Point] = field(default_factory=dict)
    eof: Point | None = None
    size: int = 0
    ends_with_newline: bool = True
    eol: bytes = b"\n"
    identity: tuple[int, int, int] = (0, 0, 0)  # inode, size, mtime_ns of the main file


@dataclass
class _Context:
    zone_origin: Name
    collect: frozenset[Name]  # owners whose TLSA records are wanted
    managed: Mapping[Name, frozenset[TlsaParams]]
    anchors: frozenset[Name]
    tracked: frozenset[Name]
    full: bool
    result: ScanResult
    forms: dict[Name, tuple[dict[bytes, Name], re.Pattern[bytes] | None]] = field(
        default_factory=dict
    )
    # Spots and points (main file) still waiting for the record that follows them; shared by
    # all files, since that record may be the first one of an $INCLUDEd file.
    awaiting: list[TlsaSpot | Point] = field(default_factory=list)

    def resolve_followers(self, follower: Follower) -> None:
        for item in self.awaiting:
            if not follower.main:
                item.included.append(follower)
            elif item.included:
                item.follower = replace(follower, after_include=True)
            else:
                item.follower = follower
        self.awaiting.clear()

    def owner_forms(self, origin: Name) -> tuple[dict[bytes, Name], re.Pattern[bytes] | None]:
        """How each tracked name can be written as an owner while ``origin`` is in effect."""
        cached = self.forms.get(origin)
        if cached is not None:
            return cached
        table: dict[bytes, Name] = {}
        for name in self.tracked:
            table[name.to_text().lower().encode()] = name
            if name == origin:
                table[b"@"] = name
            elif name.is_subdomain(origin):
                table[name.relativize(origin).to_text().lower().encode()] = name
        pattern = None
        if table:
            alternatives = b"|".join(re.escape(t) for t in sorted(table, key=len, reverse=True))
            pattern = re.compile(rb"\n(?:" + alternatives + rb")" + _OWNER_END)
        self.forms[origin] = (table, pattern)
        return table, pattern


@dataclass
class _State:
    origin: Name
    owner: Name | None = None  # None: untracked (or undefined, see owner_defined)
    owner_defined: bool = False
    default_ttl: int = 0
    default_known: bool = False
    default_from_soa: bool = False
    last_ttl: int = 0
    last_known: bool = False

    def inherits(self) -> bool:
        # Whether an omitted TTL is the previous record's (no $TTL; the SOA minimum only
        # stands in until a record gives a TTL).
        return not self.default_known or self.default_from_soa

    def implicit_ttl(self) -> int | None:
        # The TTL of a record that states none, as dnspython and BIND (RFC 2308 mode) give it.
        if self.last_known and (not self.default_known or self.default_from_soa):
            return self.last_ttl
        if self.default_known:
            return self.default_ttl
        return None

    def copy(self) -> _State:
        return _State(**self.__dict__)


def lines_before(path: Path, offset: int) -> int:
    """1-based line number of ``offset`` (only used to word messages and diffs)."""
    count = 0
    with path.open("rb") as f:
        remaining = offset
        while remaining > 0:
            block = f.read(min(remaining, CHUNK_SIZE))
            if not block:
                break
            count += block.count(b"\n")
            remaining -= len(block)
    return count + 1


def _text(buf: bytes, tok: Token) -> str:
    return buf[tok.start : tok.end].decode("ascii", "surrogateescape")


def _is_ttl(text: str) -> int | None:
    if not text[:1].isdigit():
        return None
    try:
        return parse_ttl(text)
    except ValueError:
        return None


def _is_class(text: str) -> int | None:
    if text.upper() == "IN":
        return _IN
    if not text[:1].isalpha():
        return None
    try:
        return parse_class(text)
    except ValueError:
        return None


def _type_code(text: str) -> int:
    upper = text.upper()
    if upper == "TLSA":
        return _TLSA
    if upper == "SOA":
        return _SOA
    if upper.startswith("TYPE") and upper[4:].isdigit():
        return int(upper[4:])
    return -1


class _FileScan:
    """Reads one file (the zone file or an $INCLUDEd one) chunk by chunk."""

    def __init__(self, path: Path, ctx: _Context, state: _State, main: bool, depth: int) -> None:
        self.path = path
        self.ctx = ctx
        self.state = state
        self.main = main
        self.depth = depth
        self.buf = b""
        self.low = b""
        self.tail = b""
        self.base = 0
        self.eof = False
        self.cands: list[int] = []
        self.fcands: list[int] = []
        self.pending: list[TlsaSpot] = []
        self.f: BinaryIO | None = None
        self.last_byte = b""

    # -- reading -------------------------------------------------------------------------------

    def _load(self, keep_from: int) -> None:
        """Drop the buffer before ``keep_from`` and read on, to the last complete line."""
        assert self.f is not None
        rest = self.buf[keep_from:] + self.tail
        self.base += keep_from
        kept = len(self.buf) - keep_from
        while True:
            data = self.f.read(CHUNK_SIZE)
            if not data:
                self.eof = True
                self.buf, self.tail = rest, b""
                break
            rest += data
            cut = rest.rfind(b"\n") + 1
            if cut > kept:
                self.buf, self.tail = rest[:cut], rest[cut:]
                break
        if self.buf:
            self.last_byte = self.buf[-1:]
        self.low = self.buf.lower()
        self._find_candidates()
        self._find_owner_lines(0)

    def _find_candidates(self) -> None:
        low, buf = self.low, self.buf
        starts: set[int] = set()
        for kw in _KEYWORDS:
            i = low.find(kw)
            while i >= 0:
                starts.add(low.rfind(b"\n", 0, i) + 1)
                nl = low.find(b"\n", i)
                if nl < 0:
                    break
                i = low.find(kw, nl)
        i = low.find(b"$")
        while i >= 0:
            if i == 0 or low[i - 1] == 0x0A:
                starts.add(i)
            i = low.find(b"$", i + 1)
        if b'"' in buf:
            quotes = buf.translate(None, _NOT_QUOTE_OR_NL)
            line = 0
            offset = 0
            for m in _ODD_QUOTES_RE.finditer(quotes):
                target = quotes.count(b"\n", 0, m.start())
                while line < target:
                    offset = buf.index(b"\n", offset) + 1
                    line += 1
                starts.add(offset)
        self.cands = sorted(starts)

    def _find_owner_lines(self, pos: int) -> None:
        """Line starts at or after ``pos`` whose owner is a tracked name (current origin)."""
        table, pattern = self.ctx.owner_forms(self.state.origin)
        found: list[int] = []
        if pattern is not None:
            if pos == 0:
                head = self.low[: max(len(t) for t in table) + 1]
                if pattern.match(b"\n" + head):
                    found.append(0)
            found.extend(m.start() + 1 for m in pattern.finditer(self.low, max(pos - 1, 0)))
        self.fcands = found

    def _next_candidate(self, pos: int) -> int | None:
        if pos >= len(self.buf):
            return None
        if self.ctx.full or not self.state.default_known or self.state.default_from_soa:
            return pos
        best: int | None = None
        for lst in (self.cands, self.fcands):
            i = bisect_left(lst, pos)
            if i < len(lst) and (best is None or lst[i] < best):
                best = lst[i]
        return best

    def _line_at(self, offset: int) -> int:
        return lines_before(self.path, self.base + offset)

    def _syntax(self, offset: int, message: str) -> ZoneSyntaxError:
        return ZoneSyntaxError(str(self.path), self._line_at(offset), message)

    def _zone_error(self, offset: int, message: str) -> ZoneError:
        return ZoneError(f"{self.path}:{self._line_at(offset)}: {message}")

    # -- the loop ------------------------------------------------------------------------------

    def run(self) -> None:
        try:
            self.f = self.path.open("rb")
        except OSError as exc:
            raise ZoneError(f"{self.path}: cannot read the zone file: {exc.strerror}") from None
        with self.f:
            if self.main:
                st = self.path.stat()
                self.ctx.result.identity = (st.st_ino, st.st_size, st.st_mtime_ns)
            self._load(0)
            if self.main:
                first_nl = self.buf.find(b"\n")
                if first_nl > 0 and self.buf[first_nl - 1] == 0x0D:
                    self.ctx.result.eol = b"\r\n"
            pos = 0
            while True:
                cand = self._next_candidate(pos)
                if cand is None:
                    self._gap(pos, len(self.buf))
                    if self.eof:
                        break
                    self._load(len(self.buf))
                    pos = 0
                    continue
                self._gap(pos, cand)
                rec = tokenize_record(
                    self.buf, cand, self.eof, str(self.path), partial(self._line_at, cand)
                )
                if rec is None:
                    self._load(cand)
                    pos = 0
                    continue
                origin = self.state.origin
                self._record(cand, rec)
                pos = rec.end
                if self.state.origin != origin:
                    self._find_owner_lines(pos)
        if self.main:
            result = self.ctx.result
            result.size = self.base + len(self.buf)
            result.ends_with_newline = self.last_byte in (b"", b"\n")
            result.eof = Point(
                result.size,
                self.state.origin,
                self.state.implicit_ttl(),
                inherits=self.state.inherits(),
            )
            self._resolve_pending(None)
            self.ctx.awaiting.clear()  # nothing follows them

    def _gap(self, a: int, b: int) -> None:
        """Lines [a, b) hold only simple one-line records (none of them tracked)."""
        if a >= b:
            return
        buf = self.buf
        explicit = _EXPLICIT_RE.search(buf, a, b)
        end = explicit.start() if explicit else b
        if self.pending or self.ctx.awaiting:
            first = _RECORD_RE.search(buf, a, b)
            if first is not None:
                blank = buf[first.start()] in b" \t\f\v"
                self._resolve_pending(first.start() if blank else None)
                if self.ctx.awaiting:
                    # Lines are only skipped while a $TTL is in effect, and then no record
                    # inherits a TTL from the one before it: nothing to keep for this one.
                    assert not self.state.inherits()
                    at = self.base + first.start()
                    self.ctx.resolve_followers(
                        Follower(at, at, b" ", False, None, False, self.main, self.path)
                    )
        owner = self.state.owner
        if self.main and owner is not None and owner in self.ctx.anchors:
            last_end = -1
            for m in _BLANK_RECORD_RE.finditer(buf, a, end):
                last_end = m.end()
            if last_end >= 0:
                self._set_anchor_end(owner, last_end)
        if explicit is not None:
            self.state.owner = None
            self.state.owner_defined = True

    def _resolve_pending(self, offset: int | None) -> None:
        for spot in self.pending:
            if offset is not None:
                spot.next_blank = Point(
                    self.base + offset, self.state.origin, self.state.implicit_ttl()
                )
        self.pending.clear()

    def _set_anchor_end(self, owner: Name, offset: int) -> None:
        point = Point(
            self.base + offset,
            self.state.origin,
            self.state.implicit_ttl(),
            inherits=self.state.inherits(),
        )
        self.ctx.result.anchor_ends[owner] = point
        self.ctx.awaiting.append(point)

    # -- one logical record ---------------------------------------------------------------------

    def _resolve_owner(self, start: int, raw: bytes) -> Name | None:
        if b"\\" not in raw:
            return self.ctx.owner_forms(self.state.origin)[0].get(raw.lower())
        try:
            name = dnsname.from_text(raw, self.state.origin)
        except dnsname.BadName as exc:
            raise self._syntax(start, f"bad owner name: {exc}") from None
        return name if name in self.ctx.tracked else None

    def _record(self, start: int, rec: Record) -> None:
        toks = rec.tokens
        if not toks:
            return
        buf = self.buf
        first = toks[0]
        if not rec.blank_owner and first.start == start and buf[start] == 0x24:
            self._directive(start, rec)
            return
        state = self.state
        if self.pending:
            self._resolve_pending(start if rec.blank_owner else None)
        implicit_here = state.implicit_ttl()
        inherits_here = state.inherits()
        i = 0
        if rec.blank_owner:
            if not state.owner_defined:
                raise self._syntax(start, "record with a blank owner but no previous owner")
            owner = state.owner
        else:
            owner = self._resolve_owner(start, buf[first.start : first.end])
            i = 1
        ttl: int | None = None
        ttl_tok: Token | None = None
        rdclass = _IN
        for _ in range(2):
            if i >= len(toks) or toks[i].kind == QUOTED:
                break
            word = _text(buf, toks[i])
            value = _is_ttl(word) if ttl is None else None
            if value is not None:
                ttl, ttl_tok = value, toks[i]
                i += 1
                continue
            cls = _is_class(word)
            if cls is None:
                break
            rdclass = cls
            i += 1
        if i >= len(toks):
            raise self._syntax(start, "record without a type")
        rdtype = _type_code(_text(buf, toks[i]))
        data = toks[i + 1 :]
        # A TTL goes right after the owner field: after the owner's word, or at the start of a
        # blank-owner line (so an owner name added there later still comes first).
        ttl_at = start if rec.blank_owner else first.end
        ttl_sep = buf[ttl_at : ttl_at + 1] if buf[ttl_at : ttl_at + 1] in (b" ", b"\t") else b" "
        if self.ctx.awaiting:
            self.ctx.resolve_followers(
                Follower(
                    offset=self.base + start,
                    ttl_at=self.base + ttl_at,
                    sep=ttl_sep,
                    explicit_ttl=ttl is not None,
                    inherited=implicit_here,
                    inherits=inherits_here,
                    main=self.main,
                    file=self.path,
                )
            )
        if ttl is not None:
            state.last_ttl, state.last_known = ttl, True
        if rdtype == _SOA:
            self._soa(start, owner, data, ttl)
        elif rdtype == _TLSA and owner is not None and owner in self.ctx.collect:
            if ttl is None:
                ttl = state.implicit_ttl()
                if ttl is None:
                    raise self._syntax(start, "no TTL given and no $TTL in effect")
            if rdclass != _IN:
                raise self._zone_error(start, f"TLSA record for {owner} is not of class IN")
            spot = TlsaSpot(
                owner=owner,
                record=self._tlsa_data(start, data),
                file=self.path,
                main=self.main,
                start=self.base + start,
                end=self.base + rec.end,
                explicit_owner=not rec.blank_owner,
                ttl_text=None if ttl_tok is None else buf[ttl_tok.start : ttl_tok.end],
                ttl=ttl,
                origin=state.origin,
                implicit_ttl=implicit_here,
                ttl_at=self.base + ttl_at,
                ttl_sep=ttl_sep,
                inherits=inherits_here,
            )
            managed = self.ctx.managed.get(owner)
            if not self.main and managed is not None and spot.record.params in managed:
                raise self._zone_error(
                    start,
                    f"managed TLSA record for {owner} is in an $INCLUDEd file; "
                    "move it to the main zone file",
                )
            self.ctx.result.tlsa.append(spot)
            if self.main:
                self.pending.append(spot)
                self.ctx.awaiting.append(spot)
        state.owner = owner
        state.owner_defined = True
        if self.main and owner is not None and owner in self.ctx.anchors:
            self._set_anchor_end(owner, rec.end)

    def _tlsa_data(self, start: int, data: list[Token]) -> TlsaRecord:
        try:
            if any(t.kind == QUOTED for t in data):
                raise ValueError("a quoted string is not TLSA data")
            return parse_tlsa([_text(self.buf, t) for t in data])
        except ValueError as exc:
            raise self._zone_error(start, f"TLSA record data is not valid: {exc}") from None

    def _soa(self, start: int, owner: Name | None, data: list[Token], ttl: int | None) -> None:
        buf = self.buf
        if len(data) != 7 or any(t.kind == QUOTED for t in data):
            raise self._syntax(start, "SOA record needs 7 fields")
        serial_tok = data[2]
        serial_text = buf[serial_tok.start : serial_tok.end]
        if not serial_text.isdigit() or int(serial_text) >= 2**32:
            raise self._syntax(start, f"SOA serial {serial_text.decode(errors='replace')!r}")
        try:
            minimum = parse_ttl(_text(buf, data[6]))
        except ValueError:
            raise self._syntax(start, "SOA minimum is not a TTL") from None
        if owner != self.ctx.zone_origin:
            where = self.ctx.zone_origin
            raise self._zone_error(start, f"SOA record not at the zone origin {where}")
        state = self.state
        if not state.default_known:
            state.default_ttl, state.default_known, state.default_from_soa = minimum, True, True
        self.ctx.result.soas.append(
            SoaSpot(
                file=self.path,
                main=self.main,
                serial=int(serial_text),
                serial_start=self.base + serial_tok.start,
                serial_end=self.base + serial_tok.end,
                minimum=minimum,
            )
        )

    # -- directives ----------------------------------------------------------------------------

    def _directive(self, start: int, rec: Record) -> None:
        buf = self.buf
        toks = rec.tokens
        word = _text(buf, toks[0]).upper()
        args = toks[1:]
        state = self.state
        if word == "$ORIGIN":
            if len(args) != 1:
                raise self._syntax(start, "$ORIGIN needs exactly one name")
            try:
                state.origin = dnsname.from_text(buf[args[0].start : args[0].end], state.origin)
            except dnsname.BadName as exc:
                raise self._syntax(start, f"bad $ORIGIN: {exc}") from None
        elif word == "$TTL":
            if len(args) != 1 or (value := _is_ttl(_text(buf, args[0]))) is None:
                raise self._syntax(start, "bad $TTL")
            state.default_ttl, state.default_known, state.default_from_soa = value, True, False
        elif word == "$INCLUDE":
            self._include(start, args)
        elif word == "$GENERATE":
            self._generate(start, args)
        else:
            raise self._syntax(start, f"unknown directive {word}")

    def _include(self, start: int, args: list[Token]) -> None:
        if not 1 <= len(args) <= 2:
            raise self._syntax(start, "$INCLUDE needs a file name and an optional origin")
        raw = self.buf[args[0].start : args[0].end]
        if args[0].kind == QUOTED:
            raw = raw[1:-1]
        raw = re.sub(rb"\\(.)", rb"\1", raw)
        target = Path(raw.decode("utf-8", "surrogateescape"))
        if not target.is_absolute():
            target = self.path.parent / target
        state = self.state.copy()
        if len(args) == 2:
            try:
                state.origin = dnsname.from_text(
                    self.buf[args[1].start : args[1].end], self.state.origin
                )
            except dnsname.BadName as exc:
                raise self._syntax(start, f"bad origin in $INCLUDE: {exc}") from None
        if self.depth >= _MAX_INCLUDE_DEPTH:
            raise self._zone_error(start, "$INCLUDE nested too deeply (a loop?)")
        try:
            exists = target.is_file()
        except (OSError, ValueError) as exc:  # a name too long, a NUL byte in it...
            why = getattr(exc, "strerror", None) or str(exc)
            raise self._zone_error(start, f"$INCLUDE file {target} cannot be read: {why}") from None
        if not exists:
            what = "is not a regular file" if target.exists() else "does not exist"
            raise self._zone_error(start, f"$INCLUDE file {target} {what}")
        # As in BIND and dnspython, nothing the included file sets survives its end (but see
        # Follower.after_include). Its first record follows what awaits one; the next record
        # of this file does too.
        waiting = list(self.ctx.awaiting)
        _FileScan(target, self.ctx, state, main=False, depth=self.depth + 1).run()
        self.ctx.awaiting[:] = waiting

    def _generate(self, start: int, args: list[Token]) -> None:
        buf = self.buf
        if len(args) < 4:
            raise self._syntax(start, "$GENERATE needs a range, owner, type and data")
        words = [_text(buf, t) for t in args]
        i = 2
        ttl: int | None = None
        while i < len(words) - 1:
            value = _is_ttl(words[i]) if ttl is None else None
            if value is not None:
                ttl = value
            elif not _is_class(words[i]):
                break
            i += 1
        state = self.state
        if self.ctx.awaiting:
            # The records it makes inherit a TTL like any record; a TTL for them goes after
            # the owner pattern.
            at = args[1].end
            sep = buf[at : at + 1] if buf[at : at + 1] in (b" ", b"\t") else b" "
            self.ctx.resolve_followers(
                Follower(
                    offset=self.base + start,
                    ttl_at=self.base + at,
                    sep=sep,
                    explicit_ttl=ttl is not None,
                    inherited=state.implicit_ttl(),
                    inherits=state.inherits(),
                    main=self.main,
                    file=self.path,
                )
            )
        if ttl is not None:
            state.last_ttl, state.last_known = ttl, True
        if _type_code(words[i]) != _TLSA:
            return
        m = re.fullmatch(r"(\d+)-(\d+)(?:/(\d+))?", words[0])
        if not m:
            raise self._syntax(start, f"bad $GENERATE range {words[0]!r}")
        first, last = int(m.group(1)), int(m.group(2))
        step = int(m.group(3) or 1)
        lhs = words[1]
        managed = self.ctx.managed
        for n in range(first, last + 1, max(step, 1)):
            owner_text = _GENERATE_RE.sub(partial(_generate_value, n=n), lhs)
            try:
                owner = dnsname.from_text(owner_text, self.state.origin)
            except dnsname.BadName:
                continue
            if owner in managed:
                raise self._zone_error(
                    start, f"$GENERATE makes TLSA records at managed owner {owner}"
                )


def _generate_value(m: re.Match[str], n: int) -> str:
    if m.group(0) == "\\$":
        return "$"
    if m.group(0) == "$":
        return str(n)
    value = n + int(m.group(1))
    width = int(m.group(2) or 0)
    base = m.group(3) or "d"
    if base in "nN":
        # Nibble form: reversed hex digits separated by dots.
        digits = f"{value:0{width}x}"
        text = ".".join(reversed(digits))
        return text.upper() if base == "N" else text
    return format(value, f"0{width}{base}")


def scan_zone(
    path: Path,
    origin: Name,
    collect: Collection[Name],
    managed: Mapping[Name, Collection[TlsaParams]],
    anchors: Collection[Name],
    *,
    full: bool = False,
) -> ScanResult:
    """Scan ``path`` (and its $INCLUDEs) for the spots the editor needs."""
    ctx = _Context(
        zone_origin=origin,
        collect=frozenset(collect),
        managed={k: frozenset(v) for k, v in managed.items()},
        anchors=frozenset(anchors),
        tracked=frozenset(collect) | frozenset(anchors) | {origin},
        full=full,
        result=ScanResult(),
    )
    _FileScan(path, ctx, _State(origin=origin), main=True, depth=0).run()
    return ctx.result
