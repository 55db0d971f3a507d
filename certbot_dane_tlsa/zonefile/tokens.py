"""The one master-file tokenizer: turns one logical record (a line plus its ``( ... )``
continuation lines) into tokens with byte offsets.

Every line the scanner looks at goes through this function, whether the scanner got there by
its fast search or by reading line after line, so both paths read a record the same way.
It works on bytes: zone files may hold any byte in TXT strings and comments.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

from certbot_dane_tlsa.errors import ZoneSyntaxError

WORD = 1
QUOTED = 2

_TOKEN_RE = re.compile(
    rb"([ \t\r\f\v]+)"  # 1 white space
    rb"|(\n)"  # 2 end of line
    rb"|(;[^\n]*)"  # 3 comment
    rb'|("(?:[^"\\\n]|\\[^\n])*")'  # 4 quoted string
    rb"|(\()"  # 5
    rb"|(\))"  # 6
    rb'|((?:[^\s;()"\\]|\\[^\n])+)'  # 7 word, with \X and \DDD escapes
    rb"|(.)",  # 8 anything else: a lone quote or a backslash at the end of a line
    re.S,
)


class Token(NamedTuple):
    kind: int  # WORD or QUOTED
    start: int  # offset in the buffer
    end: int
    newlines: int  # end-of-line characters between the record's start and this token


class Record(NamedTuple):
    tokens: list[Token]
    end: int  # offset just after the record's last end of line (or the buffer's end at EOF)
    blank_owner: bool  # the line starts with white space: the owner is the previous one


def tokenize_record(
    buf: bytes, start: int, at_eof: bool, path: str, line_of_start: Callable[[], int]
) -> Record | None:
    """Tokens of the logical record starting at ``start`` (a line start).

    Returns None when the buffer ends inside the record and more of the file exists.
    ``line_of_start`` is called only to word an error message (counting lines costs time).
    """
    tokens: list[Token] = []
    depth = 0
    newlines = 0
    open_line = 0
    pos = start
    size = len(buf)
    match = _TOKEN_RE.match
    while True:
        if pos >= size:
            if not at_eof:
                return None
            if depth:
                raise ZoneSyntaxError(path, line_of_start() + open_line, "unbalanced parentheses")
            break
        m = match(buf, pos)
        assert m is not None  # the last alternative matches any byte
        group = m.lastindex
        pos = m.end()
        if group == 1 or group == 3:
            continue
        if group == 2:
            newlines += 1
            if depth == 0:
                break
        elif group == 7:
            tokens.append(Token(WORD, m.start(), pos, newlines))
        elif group == 4:
            tokens.append(Token(QUOTED, m.start(), pos, newlines))
        elif group == 5:
            if depth == 0:
                open_line = newlines
            depth += 1
        elif group == 6:
            if depth == 0:
                raise ZoneSyntaxError(path, line_of_start() + newlines, "unbalanced parentheses")
            depth -= 1
        else:
            what = "unterminated quoted string" if buf[m.start()] == 0x22 else "stray backslash"
            raise ZoneSyntaxError(path, line_of_start() + newlines, what)
    blank = start < size and buf[start] in b" \t\f\v"
    return Record(tokens, pos, blank)
