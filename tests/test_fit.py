"""Tables fit the terminal's width: the widest text columns wrap, or wide columns are cut
with an ellipsis; numbers and addresses are never cut and no line is wider than the
terminal (a wrapped terminal line breaks the table's layout)."""

from __future__ import annotations

import os
import re
import sys

import pexpect
import pytest

from netns_shell.render import Fit, fit_widths, trim_cell, trim_middle

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _screen(entry_path: str, command: str, columns: int) -> list[str]:
    child = pexpect.spawn(
        sys.executable,
        ["-m", "netns_shell", "--no-pager", "--net", entry_path, "-c", command],
        env={
            **{k: v for k, v in os.environ.items() if k not in ("LINES", "COLUMNS")},
            "TERM": "dumb",
        },
        encoding="utf-8",
        timeout=30,
        dimensions=(200, columns),
    )
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    return [ANSI.sub("", line) for line in child.before.replace("\r", "").splitlines() if line]


@pytest.mark.parametrize("columns", [80, 120])
@pytest.mark.parametrize("command", ["links -d", "ns", "neigh", "fdb"])
def test_tables_fit_the_terminal_width(lab, command, columns):
    lines = _screen(lab.entry_path, command, columns)
    assert all(len(line) <= columns for line in lines), [ln for ln in lines if len(ln) > columns]
    rule = lines[1]
    assert set(rule.replace(" ", "")) == {"-"}  # the table's rule line: the layout held
    if command == "links -d":
        # every interface has its row, its index whole, in order
        indexes = [ln.split()[0] for ln in lines[2:] if ln[:1].isdigit()]
        assert indexes == sorted(indexes, key=int) and "1" in indexes
        macs = re.findall(r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}", "\n".join(lines))
        assert len(macs) >= len(indexes)  # addresses are never cut
        if columns == 120:  # the details column wraps: nothing is lost
            text = " ".join(" ".join(ln.split()) for ln in lines)
            assert "peer eth0 in" in text and "vni 4097" in text
    if command == "ns":
        inodes = re.findall(r"\b40265\d{5}\b", "\n".join(lines))
        assert inodes  # inodes are numbers: whole


def test_fit_widths_keeps_numbers_and_fits():
    headers = ["IDX", "NAME", "PATH", "DETAILS"]
    cells = [["4026531833", "nsdemo-1234-abcdef-c1", "/var/run/netns/" + "x" * 60, "d " * 40]]
    for width in (40, 60, 80, 120):
        fit = fit_widths(cells, headers, width, keep=[True, False, False, False])
        assert isinstance(fit, Fit)
        assert fit.caps[0] == 10
        assert sum(fit.caps) + 2 * 3 <= width or width < 40
        for line in fit.cell_lines(cells[0]):
            assert all(len(c) <= cap for c, cap in zip(line, fit.caps, strict=True))
    assert fit_widths(cells, headers, 500) is None


def test_cut_cells_say_so():
    assert trim_cell("/var/run/docker/netns/1-abcdefghij", 12) == "…-abcdefghij"
    assert trim_cell("docker overlay", 6) == "docke…"
    assert trim_middle("nsdemo-1234-abcdef-c1", 12) == "nsdem…def-c1"
    assert trim_cell("short", 10) == "short"
