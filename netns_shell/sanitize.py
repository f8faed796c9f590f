"""Make kernel-supplied strings safe for a terminal.

Interface names, aliases and the like are chosen by whoever controls a
namespace; a container can plant terminal escape sequences in them (architecture.md
fact 9).  Every string a human sees passes through `for_terminal`, which
turns control characters, undecodable bytes (kept as surrogates by
`surrogateescape`), bidirectional overrides and every other non-printable
character into visible escapes.  JSON output needs no such step: it
escapes everything itself.
"""

from __future__ import annotations

__all__ = ["for_terminal", "without_controls"]


def _escape(ch: str) -> str:
    cp = ord(ch)
    if 0xDC80 <= cp <= 0xDCFF:  # a byte that was not valid UTF-8
        return f"\\x{cp - 0xDC00:02x}"
    if cp < 0x100:
        return f"\\x{cp:02x}"
    return f"\\u{cp:04x}" if cp < 0x10000 else f"\\U{cp:08x}"


def for_terminal(text: str) -> str:
    """`text` with every character that could control a terminal made visible.

    str.isprintable() is False for controls (Cc), format characters such as
    bidi overrides (Cf), surrogates, line/paragraph separators and unassigned
    code points; those are escaped, and so is the backslash, so an escape in
    the output is never ambiguous.  Plain names pass through at C speed.
    """
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(
        ch if ch.isprintable() and ch != "\\" else ("\\\\" if ch == "\\" else _escape(ch))
        for ch in text
    )


def without_controls(text: str) -> str:
    """`text` with non-printable characters escaped, backslashes left as they are.

    For documents whose syntax uses backslashes (Graphviz `\\n`): their producer
    has already passed every name through `for_terminal`, so only the
    document's own escapes remain, and they must reach the output unchanged.
    """
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in text)
