"""Make kernel-supplied strings safe for a terminal.

Interface names, aliases and the like are chosen by whoever controls a
namespace; a container can plant terminal escape sequences in them (DESIGN
fact 9).  Every string a human sees passes through `for_terminal`, which
turns control characters, undecodable bytes (kept as surrogates by
`surrogateescape`) and bidirectional overrides into visible escapes.
JSON output needs no such step: it escapes everything itself.
"""

from __future__ import annotations

import re

__all__ = ["for_terminal"]


def _escape(cp: int) -> str:
    if 0xDC80 <= cp <= 0xDCFF:  # a byte that was not valid UTF-8
        return f"\\x{cp - 0xDC00:02x}"
    if cp < 0x100:
        return f"\\x{cp:02x}"
    return f"\\u{cp:04x}"


_UNSAFE_POINTS = (
    list(range(0x00, 0x20))
    + list(range(0x7F, 0xA0))
    + list(range(0xDC80, 0xDD00))  # surrogateescape'd bytes
    + [0x200E, 0x200F, 0x2028, 0x2029]
    + list(range(0x202A, 0x202F))
    + list(range(0x2066, 0x206A))
    + [0xFEFF]
)
_TABLE = {cp: _escape(cp) for cp in _UNSAFE_POINTS}
_TABLE[ord("\\")] = "\\\\"
_NEEDS_WORK = re.compile("[" + "".join(re.escape(chr(cp)) for cp in _TABLE) + "\ud800-\udfff]")


def for_terminal(text: str) -> str:
    """`text` with every character that could control a terminal made visible."""
    if not _NEEDS_WORK.search(text):
        return text
    out = text.translate(_TABLE)
    # any other lone surrogate (never produced by our decoders, but be safe)
    return re.sub("[\ud800-\udfff]", lambda m: _escape(ord(m.group())), out)
