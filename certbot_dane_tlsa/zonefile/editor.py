"""Plan the edit of a zone file (TLSA RRsets and the SOA serial) and write it out.

The plan is a short list of byte splices into the original file; writing streams the original
through with those splices applied, so every other byte stays as it was and a large zone never
has to fit in memory.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from certbot_dane_tlsa.dnsname import Name
from certbot_dane_tlsa.errors import SettingsError, ZoneError
from certbot_dane_tlsa.lite_dataclasses import dataclass, field
from certbot_dane_tlsa.records import TlsaParams, TlsaRecord
from certbot_dane_tlsa.zonefile.presentation import parse_ttl
from certbot_dane_tlsa.zonefile.scanner import (
    Follower,
    Point,
    ScanResult,
    TlsaSpot,
    lines_before,
    scan_zone,
)
from certbot_dane_tlsa.zonefile.serial import SERIAL_METHODS, next_serial

_COPY_BLOCK = 1 << 20
_CONTEXT = 3


@dataclass(frozen=True)
class RRsetChange:
    owner: Name
    before: frozenset[TlsaRecord]  # managed-param records found at owner
    after: frozenset[TlsaRecord]
    ttl: int  # effective TTL of the RRset after the edit


@dataclass(frozen=True)
class Splice:
    """Replace bytes [start, end) of the original file by ``text``."""

    start: int
    end: int
    text: bytes


@dataclass
class ZoneEdit:
    path: Path
    origin: Name
    changes: list[RRsetChange]
    unchanged: list[RRsetChange]
    old_serial: int | None
    new_serial: int | None
    soa_minimum: int
    found: dict[Name, frozenset[TlsaRecord]]
    splices: list[Splice] = field(default_factory=list, repr=False)
    # (inode, size, mtime_ns) of the file that was planned, to refuse writing over a newer one.
    identity: tuple[int, int, int] = field(default=(0, 0, 0), repr=False)

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    def _open_checked(self) -> BinaryIO:
        f = self.path.open("rb")
        st = os.fstat(f.fileno())
        if (st.st_ino, st.st_size, st.st_mtime_ns) != self.identity:
            f.close()
            raise ZoneError(f"{self.path}: the file changed since it was read; run again")
        return f

    def write_to(self, out: BinaryIO) -> None:
        """Stream the original file with the planned splices applied."""
        with self._open_checked() as f:
            pos = 0
            for sp in self.splices:
                _copy(f, out, sp.start - pos)
                out.write(sp.text)
                f.seek(sp.end)
                pos = sp.end
            _copy(f, out, -1)

    def diff(self) -> str:
        """Unified diff of the planned edit, reading only the regions around the splices."""
        if not self.splices:
            return ""
        with self._open_checked() as f:
            return _unified_diff(f, str(self.path), self.splices, self.identity[1])


def _copy(src: BinaryIO, dst: BinaryIO, count: int) -> None:
    """Copy ``count`` bytes (all the rest when negative)."""
    while count != 0:
        block = src.read(_COPY_BLOCK if count < 0 else min(count, _COPY_BLOCK))
        if not block:
            if count > 0:
                raise ZoneError("the zone file became shorter while it was being copied")
            return
        dst.write(block)
        if count > 0:
            count -= len(block)


# -- diff --------------------------------------------------------------------------------------


def _read_at(f: BinaryIO, start: int, end: int) -> bytes:
    f.seek(start)
    return f.read(end - start)


def _line_start(f: BinaryIO, offset: int) -> int:
    pos = offset
    while pos > 0:
        lo = max(0, pos - 4096)
        i = _read_at(f, lo, pos).rfind(b"\n")
        if i >= 0:
            return lo + i + 1
        pos = lo
    return 0


def _line_end(f: BinaryIO, offset: int, size: int) -> int:
    pos = offset
    while pos < size:
        block = _read_at(f, pos, min(size, pos + 4096))
        i = block.find(b"\n")
        if i >= 0:
            return pos + i + 1
        pos += len(block)
    return size


def _lines(data: bytes) -> list[str]:
    parts = data.split(b"\n")
    if parts and parts[-1] == b"":
        parts.pop()
    return [p.removesuffix(b"\r").decode("utf-8", "replace") for p in parts]


def _lines_back(f: BinaryIO, offset: int, count: int) -> list[str]:
    start = offset
    for _ in range(count):
        if start == 0:
            break
        start = _line_start(f, start - 1)
    return _lines(_read_at(f, start, offset))


def _lines_forward(f: BinaryIO, offset: int, count: int, size: int) -> list[str]:
    end = offset
    for _ in range(count):
        if end >= size:
            break
        end = _line_end(f, end, size)
    return _lines(_read_at(f, offset, end))


def _line_numbers(f: BinaryIO, offsets: Iterable[int]) -> dict[int, int]:
    """1-based line numbers of sorted offsets, in one streaming pass."""
    result: dict[int, int] = {}
    f.seek(0)
    pos = 0
    count = 0
    for off in sorted(set(offsets)):
        while pos < off:
            block = f.read(min(off - pos, _COPY_BLOCK))
            if not block:
                break
            count += block.count(b"\n")
            pos += len(block)
        result[off] = count + 1
    return result


def _unified_diff(f: BinaryIO, label: str, splices: list[Splice], size: int) -> str:
    # Widen each splice to whole lines; splices whose lines touch form one region.
    groups: list[tuple[int, int, list[Splice]]] = []
    for sp in splices:
        ls = _line_start(f, sp.start)
        at_line_start = sp.end == _line_start(f, sp.end)
        if at_line_start and (sp.end > sp.start or sp.text.endswith(b"\n") or not sp.text):
            le = sp.end
        else:
            le = _line_end(f, sp.end, size)
        if groups and ls <= groups[-1][1]:
            first_ls, prev_le, members = groups[-1]
            groups[-1] = (first_ls, max(prev_le, le), [*members, sp])
        else:
            groups.append((ls, le, [sp]))
    starts = [g[0] for g in groups]
    ends = [g[1] for g in groups]
    news: list[bytes] = []
    for ls, le, members in groups:
        parts = []
        pos = ls
        for sp in members:
            parts.append(_read_at(f, pos, sp.start))
            parts.append(sp.text)
            pos = sp.end
        parts.append(_read_at(f, pos, le))
        news.append(b"".join(parts))
    numbers = _line_numbers(f, starts + ends)
    # Group regions into hunks when their contexts overlap.
    hunks: list[list[int]] = []
    for i in range(len(groups)):
        if hunks and numbers[starts[i]] - numbers[ends[hunks[-1][-1]]] <= 2 * _CONTEXT:
            hunks[-1].append(i)
        else:
            hunks.append([i])
    out = [f"--- {label}\n", f"+++ {label}\n"]
    delta = 0
    for hunk in hunks:
        first, last = hunk[0], hunk[-1]
        before = _lines_back(f, starts[first], _CONTEXT)
        after = _lines_forward(f, ends[last], _CONTEXT, size)
        body: list[str] = [" " + line for line in before]
        old_count = len(before)
        new_count = len(before)
        for j, i in enumerate(hunk):
            if j:
                between = _lines(_read_at(f, ends[hunk[j - 1]], starts[i]))
                body.extend(" " + line for line in between)
                old_count += len(between)
                new_count += len(between)
            old = _lines(_read_at(f, starts[i], ends[i]))
            new = _lines(news[i])
            body.extend("-" + line for line in old)
            body.extend("+" + line for line in new)
            old_count += len(old)
            new_count += len(new)
        body.extend(" " + line for line in after)
        old_count += len(after)
        new_count += len(after)
        old_start = numbers[starts[first]] - len(before)
        new_start = old_start + delta
        out.append(
            f"@@ -{old_start if old_count else old_start - 1},{old_count} "
            f"+{new_start if new_count else new_start - 1},{new_count} @@\n"
        )
        out.extend(line + "\n" for line in body)
        delta += new_count - old_count
    return "".join(out)


# -- planning ----------------------------------------------------------------------------------


def _owner_text(owner: Name, zone_origin: Name, here: Name) -> bytes:
    if here == zone_origin and owner.is_subdomain(zone_origin):
        if owner == zone_origin:
            return b"@"
        return owner.relativize(zone_origin).to_text().encode()
    return owner.to_text().encode()


def _record_line(owner_text: bytes, ttl_text: bytes | None, rec: TlsaRecord, eol: bytes) -> bytes:
    ttl = b"" if ttl_text is None else ttl_text + b"\t"
    return owner_text + b"\t" + ttl + b"IN\tTLSA\t" + rec.to_text().encode() + eol


def _parse_ttl(text: bytes) -> int:
    return parse_ttl(text.decode("ascii"))


def _check_inputs(
    origin: Name,
    desired: Mapping[Name, Collection[TlsaRecord]],
    managed: Mapping[Name, Collection[TlsaParams]],
    serial: str,
    ttl: int | None,
) -> None:
    if not origin.is_absolute():
        raise ZoneError(f"zone origin {origin} is not an absolute name")
    if serial not in SERIAL_METHODS:
        raise SettingsError(f"serial method {serial!r} is not one of {', '.join(SERIAL_METHODS)}")
    if ttl is not None and not 0 <= ttl < 2**31:
        raise SettingsError(f"TTL {ttl} is outside 0..2147483647")
    for owner in list(managed) + list(desired):
        if not owner.is_absolute() or not owner.is_subdomain(origin):
            raise ZoneError(f"owner {owner} is outside the zone {origin}")
    for owner, records in desired.items():
        params = set(managed.get(owner, ()))
        for rec in records:
            if rec.params not in params:
                raise ZoneError(f"record {rec} for {owner} has parameters that are not managed")


def _default_anchor(owner: Name, origin: Name) -> Name | None:
    if len(owner.labels) < 3:
        return None
    anchor = Name(owner.labels[2:])
    return anchor if anchor.is_subdomain(origin) else None


def plan_zone_edit(
    path: Path,
    origin: Name,
    desired: Mapping[Name, Collection[TlsaRecord]],
    managed: Mapping[Name, Collection[TlsaParams]],
    *,
    serial: str = "auto",
    ttl: int | None = None,
    now: datetime | None = None,
    anchors: Mapping[Name, Name] | None = None,
    full_scan: bool = False,
) -> ZoneEdit:
    """Work out the splices that make the managed TLSA RRsets equal ``desired``.

    ``full_scan`` tokenizes every line instead of only the lines that can matter; the result
    must be the same (the tests compare both).
    """
    _check_inputs(origin, desired, managed, serial, ttl)
    now = now or datetime.now(UTC)
    anchor_of: dict[Name, Name | None] = {}
    for owner in managed:
        given = (anchors or {}).get(owner)
        anchor_of[owner] = given if given is not None else _default_anchor(owner, origin)
    scan = scan_zone(
        path,
        origin,
        collect=list(managed),
        managed=managed,
        anchors=[a for a in anchor_of.values() if a is not None],
        full=full_scan,
    )
    if not scan.soas:
        raise ZoneError(f"{path}: no SOA record at the zone origin {origin}")
    if len(scan.soas) > 1:
        second = scan.soas[1]
        line = lines_before(second.file, second.serial_start)
        raise ZoneError(f"{second.file}:{line}: a second SOA record for {origin}")
    soa = scan.soas[0]

    found: dict[Name, frozenset[TlsaRecord]] = {
        owner: frozenset(s.record for s in scan.tlsa if s.owner == owner) for owner in managed
    }
    planner = _Planner(scan, origin, ttl)
    changes: list[RRsetChange] = []
    unchanged: list[RRsetChange] = []
    for owner in sorted(managed):
        params = frozenset(managed[owner])
        anchor = anchor_of[owner]
        point = scan.anchor_ends.get(anchor) if anchor is not None else None
        change = planner.plan_owner(owner, params, frozenset(desired.get(owner, ())), point)
        (changes if change.before != change.after else unchanged).append(change)

    new_serial: int | None = None
    if changes and serial != "keep":
        if not soa.main:
            line = lines_before(soa.file, soa.serial_start)
            raise ZoneError(
                f"{soa.file}:{line}: the SOA record is in an $INCLUDEd file; "
                "the serial can only be changed in the main zone file"
            )
        new_serial = next_serial(soa.serial, serial, now)
        planner.splices.append(Splice(soa.serial_start, soa.serial_end, str(new_serial).encode()))
    return ZoneEdit(
        path=path,
        origin=origin,
        changes=changes,
        unchanged=unchanged,
        old_serial=soa.serial,
        new_serial=new_serial,
        soa_minimum=soa.minimum,
        found=found,
        splices=planner.finish() if changes else [],
        identity=scan.identity,
    )


@dataclass(frozen=True)
class _TtlStep:
    """A splice of whole record lines, as far as the TTL of the next record is concerned."""

    start: int
    end: int
    before: int | None  # what a record at ``start`` inherited in the original file
    ttl: int | None  # the TTL of the last written line that states one (None: no such line)
    follower: Follower | None  # the first record after ``end`` in the main file
    included: tuple[Follower, ...] = ()  # first records of $INCLUDEd files before that one


def _would_change(follower: Follower, now: int | None) -> bool:
    """Whether ``follower`` would inherit ``now`` instead of the TTL it has."""
    return (
        follower.inherits
        and not follower.explicit_ttl
        and follower.inherited is not None
        and follower.inherited != now
    )


def _cannot_keep_ttl(follower: Follower, source: str) -> ZoneError:
    line = lines_before(follower.file, follower.offset)
    return ZoneError(
        f"{follower.file}:{line}: this record states no TTL, so it takes the TTL of {source}, "
        "which the edit changes; give it a TTL (or add $TTL to the zone)"
    )


class _Planner:
    def __init__(self, scan: ScanResult, origin: Name, ttl: int | None) -> None:
        self.scan = scan
        self.origin = origin
        self.ttl = ttl
        self.splices: list[Splice] = []
        self.owner_fixes: dict[int, bytes] = {}
        self.steps: list[_TtlStep] = []

    def _ttl_text(self, spots: list[TlsaSpot]) -> bytes | None:
        if self.ttl is not None:
            return str(self.ttl).encode()
        for s in spots:
            if s.ttl_text is not None:
                return s.ttl_text
        return None

    def plan_owner(
        self,
        owner: Name,
        params: frozenset[TlsaParams],
        after: frozenset[TlsaRecord],
        anchor_end: Point | None,
    ) -> RRsetChange:
        scan = self.scan
        at_owner = [s for s in scan.tlsa if s.owner == owner]
        mine = [s for s in at_owner if s.record.params in params]
        before = frozenset(s.record for s in mine)
        ttl_text = self._ttl_text(at_owner)
        if before == after:
            first_ttl = at_owner[0].ttl if at_owner else self._fallback_ttl(None, ttl_text)
            return RRsetChange(owner, before, after, first_ttl)

        removed = [s for s in mine if s.record not in after]
        to_add = sorted(after - before)
        if mine:
            first = mine[0]
            point = Point(
                first.start,
                first.origin,
                first.implicit_ttl,
                inherits=first.inherits,
                follower=first.as_follower(),
            )
        else:
            assert scan.eof is not None
            point = anchor_end or scan.eof
        if ttl_text is None and point.inherits and point.implicit_ttl is not None:
            # Without $TTL a line that omits its TTL takes the one of whatever precedes it,
            # which this edit may change too: state the TTL it would have got.
            ttl_text = str(point.implicit_ttl).encode()
        if ttl_text is None and to_add and point.implicit_ttl is None:
            # Nothing gives a line here a TTL (no $TTL, no TTL earlier in the file). named
            # rejects such a zone anyway, but what we write must still read back: state one.
            ttl_text = str(self._fallback_ttl(None, None)).encode()
        written_ttl = None if ttl_text is None or not to_add else _parse_ttl(ttl_text)
        eol = scan.eol
        text = b"".join(
            _record_line(_owner_text(owner, self.origin, point.origin), ttl_text, rec, eol)
            for rec in to_add
        )
        replaced: TlsaSpot | None = None
        if to_add:
            if mine and mine[0] in removed:
                replaced = mine[0]
                self.splices.append(Splice(replaced.start, replaced.end, text))
                self.steps.append(
                    _TtlStep(
                        replaced.start,
                        replaced.end,
                        replaced.implicit_ttl,
                        written_ttl,
                        replaced.follower,
                        tuple(replaced.included),
                    )
                )
            else:
                self.splices.append(Splice(point.offset, point.offset, text))
                self.steps.append(
                    _TtlStep(
                        point.offset,
                        point.offset,
                        point.implicit_ttl,
                        written_ttl,
                        point.follower,
                        tuple(point.included),
                    )
                )
        by_start = {s.start: s for s in removed}
        for s in removed:
            if s is replaced:
                continue
            self.splices.append(Splice(s.start, s.end, b""))
            self.steps.append(
                _TtlStep(s.start, s.end, s.implicit_ttl, None, s.follower, tuple(s.included))
            )
            if not s.explicit_owner:
                continue
            # A following blank-owner line inherited this owner: keep it where it was.
            nxt = s.next_blank
            while nxt is not None and nxt.offset in by_start:
                if by_start[nxt.offset] is replaced:
                    nxt = None
                    break
                nxt = by_start[nxt.offset].next_blank
            if nxt is not None and nxt.offset not in self.owner_fixes:
                fix = _owner_text(owner, self.origin, nxt.origin)
                self.owner_fixes[nxt.offset] = fix
                self.splices.append(Splice(nxt.offset, nxt.offset, fix))

        # Effective TTL: BIND keeps the TTL of the first record of the RRset in the file.
        removed_ids = {id(s) for s in removed}
        kept = [(s.start if s.main else -1, s.ttl) for s in at_owner if id(s) not in removed_ids]
        if to_add:
            kept.append((point.offset, self._fallback_ttl(point, ttl_text)))
        kept.sort(key=lambda item: item[0])
        return RRsetChange(owner, before, after, kept[0][1] if kept else 0)

    def _fallback_ttl(self, point: Point | None, ttl_text: bytes | None) -> int:
        if ttl_text is not None:
            return _parse_ttl(ttl_text)
        if point is not None and point.implicit_ttl is not None:
            return point.implicit_ttl
        assert self.scan.eof is not None
        if self.scan.eof.implicit_ttl is not None:
            return self.scan.eof.implicit_ttl
        return self.scan.soas[0].minimum

    def _keep_inherited_ttls(self) -> None:
        """Give a record the TTL it had when the edit in front of it would change it.

        Steps with no record between them form one run; after a run, the next record inherits
        the TTL of the last written line that states one, or else what the run's first step
        inherited. When that differs from what the record inherited before, and no $TTL
        makes inheritance moot, its old TTL is written into it.
        """
        steps = sorted(self.steps, key=lambda s: (s.start, s.end))  # stable: splice order
        i = 0
        while i < len(steps):
            now = steps[i].before
            j = i
            while True:
                step = steps[j]
                if step.ttl is not None:
                    now = step.ttl
                for inner in step.included:
                    if _would_change(inner, now):
                        raise _cannot_keep_ttl(inner, "the record before it in the main file")
                follower = step.follower
                nxt = steps[j + 1] if j + 1 < len(steps) else None
                if nxt is None or (follower is not None and nxt.start > follower.offset):
                    break
                j += 1
            i = j + 1
            if follower is None or not _would_change(follower, now):
                continue
            if follower.after_include:
                # Which TTL it has depends on the reader; no text keeps both readings.
                raise _cannot_keep_ttl(follower, "the record before the $INCLUDE above it")
            assert follower.inherited is not None
            text = follower.sep + str(follower.inherited).encode()
            self.splices.append(Splice(follower.ttl_at, follower.ttl_at, text))

    def finish(self) -> list[Splice]:
        """Sort and merge the splices; make text added at the end of the file start a line."""
        self._keep_inherited_ttls()
        scan = self.scan
        splices = sorted(self.splices, key=lambda s: (s.start, s.end))
        if not scan.ends_with_newline:
            at_end = [s for s in splices if s.end == scan.size]
            if at_end and all(s.start == scan.size for s in at_end):
                first = at_end[0]
                splices[splices.index(first)] = Splice(
                    first.start, first.end, scan.eol + first.text
                )
        merged: list[Splice] = []
        for sp in splices:
            if merged and sp.start == merged[-1].end and merged[-1].start == merged[-1].end:
                prev = merged.pop()
                sp = Splice(prev.start, sp.end, prev.text + sp.text)
            if merged and sp.start < merged[-1].end:
                raise AssertionError(f"overlapping zone edits {merged[-1]} and {sp}")
            merged.append(sp)
        return merged


def read_tlsa(
    path: Path, origin: Name, owners: Collection[Name]
) -> dict[Name, frozenset[TlsaRecord]]:
    """The TLSA records at ``owners`` as the zone file (and its $INCLUDEs) has them."""
    for owner in owners:
        if not owner.is_subdomain(origin):
            raise ZoneError(f"owner {owner} is outside the zone {origin}")
    scan = scan_zone(path, origin, collect=owners, managed={}, anchors=())
    return {owner: frozenset(s.record for s in scan.tlsa if s.owner == owner) for owner in owners}
