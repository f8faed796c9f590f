"""Tables and help fit the terminal's width without cutting a value (netns_shell/layout.py).

A cell wraps only after a space or a comma, so an address, a MAC or a name is never split;
columns of priority > 0 are hidden (and named in a note under the table) when the rest
cannot fit; when the priority 0 columns alone cannot, each record becomes a block. Checked
on the demo lab's real tables, rendered through a pseudo-terminal at 80, 100 and 200
columns, against iproute2's JSON; piped output keeps every value on its line.
"""

from __future__ import annotations

import os
import re
import sys

import pexpect
import pytest

from netns_shell.commands.inspect import (
    FDB_COLUMNS,
    LINK_DETAIL_COLUMNS,
    NEIGH_COLUMNS,
    ROUTE_COLUMNS,
)
from netns_shell.commands.namespaces import NS_COLUMNS
from netns_shell.commands.overlay import OVERLAY_COLUMNS
from netns_shell.lab import Lab
from netns_shell.layout import Fit, block_lines, fit_widths, wrap_text
from netns_shell.render import Wrapped
from tests.conftest import bridge_json, ip_json, netns_shell

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
NOTE = re.compile(r"^\((hidden at|one block per record)")
COLUMNS = {
    "ns": NS_COLUMNS,
    "links -d": LINK_DETAIL_COLUMNS,
    "overlay": OVERLAY_COLUMNS,
    "neigh": NEIGH_COLUMNS,
    "fdb": FDB_COLUMNS,
    "routes": ROUTE_COLUMNS,
}


@pytest.fixture(scope="module")
def demo_lab():
    """The lab as --demo builds it: with the inconsistencies `overlay` flags."""
    with Lab(prefix="nst", inconsistent=True) as built:
        yield built


def _terminal(args: list[str], columns: int) -> list[str]:
    """netns-shell ARGS on a pseudo-terminal `columns` wide (tall enough not to page)."""
    child = pexpect.spawn(
        sys.executable,
        ["-m", "netns_shell", "--no-pager", *args],
        env={
            **{k: v for k, v in os.environ.items() if k not in ("LINES", "COLUMNS")},
            "TERM": "dumb",
        },
        encoding="utf-8",
        timeout=30,
        dimensions=(500, columns),
    )
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    return [ANSI.sub("", line) for line in child.before.replace("\r", "").split("\n")]


def _split(lines: list[str]) -> tuple[list[str], str]:
    """(the table or blocks, the note under them: '' when none)."""
    for n, line in enumerate(lines):
        if NOTE.match(line):
            return lines[:n], " ".join(lines[n:]).strip()
    return lines, ""


def _hidden(note: str) -> set[str]:
    match = re.match(r"\(hidden at \d+ columns: ([^;]*);", note)
    return set(match.group(1).split(", ")) if match else set()


def _words(lines: list[str]) -> set[str]:
    """Every word on the screen: what stands between spaces and commas."""
    return {part for line in lines for word in line.split() for part in word.split(",")}


def _expected(lab: Lab, command: str) -> dict[str, set[str]]:
    """Values each column must show whole, from iproute2 (the oracle) and the lab's plan."""
    name = lab.overlay
    if command == "ns":
        return {"NAME": {lab.name(role) for role in lab.roles}}
    if command == "links -d":
        links = ip_json("-n", name, "-d", "addr", "show")
        addresses = {
            f"{a['local']}/{a['prefixlen']}" for link in links for a in link.get("addr_info", [])
        }
        return {
            "ADDRESSES": addresses,
            "MAC": {link["address"] for link in links},
            "DETAILS": {str(lab.vni), *(lab.name(m.role) for m in lab.members)},
        }
    if command == "overlay":
        return {
            "MAC": {m.mac for m in lab.members} | {r.mac for r in lab.remotes},
            "IP": {m.ip for m in lab.members} | {m.ip6 for m in lab.members},
            "VTEP": {r.vtep for r in lab.remotes} | {lab.unrouted.vtep},
            "CONTAINER": {lab.name(m.role) for m in lab.members},
            "PROBLEMS": {"two-ports", "neigh-without-fdb", "fdb-without-neigh", "vtep-unreachable"},
        }
    if command == "neigh":
        entries = ip_json("-n", name, "neigh", "show")
        return {"DST": {e["dst"] for e in entries}, "LLADDR": {e["lladdr"] for e in entries}}
    if command == "fdb":
        entries = bridge_json("-n", name, "fdb", "show")
        vteps = {e["dst"] for e in entries if "dst" in e}
        return {"MAC": {e["mac"] for e in entries}, "VTEP": vteps}
    assert command == "routes"
    routes = ip_json("-n", name, "route") + ip_json("-n", name, "-6", "route")
    return {
        "DST": {r["dst"] for r in routes},
        "GATEWAY": {r["gateway"] for r in routes if "gateway" in r},
    }


@pytest.mark.parametrize("columns", [80, 100, 200])
@pytest.mark.parametrize("command", list(COLUMNS))
def test_lab_tables_keep_key_values_whole(demo_lab, command, columns):
    lines = _terminal(["--net", demo_lab.entry_path, "-c", command], columns)
    body, note = _split(lines)
    assert all(len(line) <= columns for line in lines), [ln for ln in lines if len(ln) > columns]
    declared = COLUMNS[command]
    optional = {c.header for c in declared if c.priority > 0}
    hidden = _hidden(note)
    assert hidden <= optional, f"a key column was hidden: {note}"
    if columns == 200 and command != "ns":  # ns lists the whole host: it may be wider
        assert not note, note
        assert set(body[0].split()) == {c.header for c in declared if c.header}
    words = _words(body)
    if command == "links -d":  # IFNAME@peer: the name is the part before '@'
        words |= {w.split("@")[0] for w in words}
    for header, values in _expected(demo_lab, command).items():
        if header in hidden:
            continue
        missing = values - words
        assert not missing, f"{header} values cut or split at {columns} columns: {missing}"
    if note.startswith("(one block"):
        # a block per record: every line is 'HEADER  value' or a value's continuation
        labels = {line.split()[0] for line in body if line[:1].strip()}
        assert labels <= {c.header for c in declared}
    elif body and body[1:2]:
        assert set(body[1].replace(" ", "")) == {"-"}  # the rule line: the layout held


def test_piped_output_keeps_every_value_on_its_line(demo_lab):
    run = netns_shell("--net", demo_lab.entry_path, "-c", "links -d", env={"COLUMNS": "40"})
    assert run.status == 0, run.stderr
    first = demo_lab.members[0]
    veth = next(line for line in run.stdout.splitlines() if line.startswith("4 "))
    assert f"peer eth0 in {demo_lab.name(first.role)}, port forwarding" in veth
    assert "hidden at" not in run.stdout and len(veth) > 40


# ---------------------------------------------------------------------- help
@pytest.mark.parametrize("command", ["help", "help trace", "help check"])
def test_help_wraps_at_word_boundaries(command):
    piped = netns_shell("-c", command)
    assert piped.status == 0
    narrow = [line for line in _terminal(["-c", command], 80) if line.strip()]
    assert all(len(line) <= 80 for line in narrow), [ln for ln in narrow if len(ln) > 80]
    # wrapped only at spaces: the same words in the same order, none broken
    assert " ".join(narrow).split() == piped.stdout.split()
    assert len(narrow) > len([ln for ln in piped.stdout.splitlines() if ln.strip()])
    wide = {line.rstrip() for line in _terminal(["-c", command], 200)}
    short = [line for line in piped.stdout.splitlines() if len(line) <= 200]
    assert [line for line in short if line not in wide] == []  # what fits is left alone


def test_help_continuations_are_indented():
    lines = _terminal(["-c", "help trace"], 80)
    usage = lines.index(next(ln for ln in lines if ln.startswith("usage: trace")))
    assert lines[usage + 1].startswith(" " * 7 + "[")  # under the command's arguments
    probe = next(n for n, ln in enumerate(lines) if ln.startswith("  --probe "))
    assert lines[probe + 1].startswith(" " * 26) and lines[probe + 1].strip()


def test_wrapped_entry_goes_under_its_term_when_narrow():
    entry = Wrapped.entry("  arping [-c N] IP", "ARP requests from inside the namespace", 48)
    assert entry == f"{'  arping [-c N] IP':46}  ARP requests from inside the namespace"
    assert entry.wrap(100) == [str(entry)]
    assert entry.wrap(60) == [
        "  arping [-c N] IP",
        "      ARP requests from inside the namespace",
    ]
    usage = Wrapped("usage: ping [-c N] [-W S] [-s SIZE] HOST", 7, groups=True)
    assert usage.wrap(30) == ["usage: ping [-c N] [-W S]", "       [-s SIZE] HOST"]


# ---------------------------------------------------------------------- layout
def test_wrap_breaks_only_after_separators():
    assert wrap_text("10.0.9.2,fd00:9::2", 12) == ["10.0.9.2,", "fd00:9::2"]
    assert wrap_text("fe80::9053:4fff:feea:9441/64", 13) == ["fe80::9053:4fff:feea:9441/64"]
    assert wrap_text("vni 4097, local 192.0.2.1, port 4789", 16) == [
        "vni 4097, local",
        "192.0.2.1, port",
        "4789",
    ]
    assert wrap_text("abcdefghij", 4, hard=True) == ["abcd", "efgh", "ij"]


HEADERS = ["NAME", "KIND", "ADDRESSES", "PATH", "NOTE"]
ROW = [
    "nsdemo-1234-abcdef-ovl",
    "docker overlay",
    "10.0.9.2/24 fe80::9053:4fff:feea:9441/64",
    "/var/run/docker/netns/1-abcdefghij",
    "a long remark that can wrap",
]


def test_fit_wraps_before_it_hides():
    assert fit_widths([ROW], HEADERS, 500, [0, 0, 0, 2, 1]) is None
    fit = fit_widths([ROW], HEADERS, 110, [0, 0, 0, 2, 1])
    assert isinstance(fit, Fit) and not fit.hidden and not fit.blocks
    lines = fit.cell_lines(ROW)
    assert len(lines) > 1
    assert {w for line in lines for cell in line for w in cell.split()} == {
        w for cell in ROW for w in cell.split()
    }  # every word whole


def test_fit_hides_the_highest_priority_first_and_says_so():
    fit = fit_widths([ROW], HEADERS, 80, [0, 0, 0, 2, 1])
    assert fit is not None and fit.hidden == (3,)  # PATH (2) before NOTE (1)
    assert fit.note(HEADERS, 80) == "(hidden at 80 columns: PATH; widen or pipe to see all)"
    assert sum(fit.caps) + 2 * (len(fit.shown) - 1) <= 80
    fit = fit_widths([ROW], HEADERS, 70, [0, 0, 0, 2, 1])  # NOTE wraps tall, but shows
    assert fit is not None and fit.hidden == (3,) and fit.shown == (0, 1, 2, 4)
    fit = fit_widths([ROW], HEADERS, 64, [0, 0, 0, 2, 1])
    assert fit is not None and set(fit.hidden) == {3, 4} and fit.shown == (0, 1, 2)


def test_fit_never_shows_a_column_while_a_more_important_one_is_hidden():
    headers = ["MAC", "CONTAINER", "NODE"]
    row = ["02:42:0a:00:09:02", "nsdemo-17117-6e6771-c1", "n1"]
    fit = fit_widths([row], headers, 40, [0, 1, 2])
    assert fit is not None and fit.shown == (0,) and set(fit.hidden) == {1, 2}


def test_fit_turns_to_blocks_when_key_columns_cannot_fit():
    fit = fit_widths([ROW], HEADERS, 50, [0, 0, 0, 0, 0])
    assert fit is not None and fit.blocks
    assert block_lines(HEADERS, ROW, 50) == [
        "NAME       nsdemo-1234-abcdef-ovl",
        "KIND       docker overlay",
        "ADDRESSES  10.0.9.2/24",
        "           fe80::9053:4fff:feea:9441/64",
        "PATH       /var/run/docker/netns/1-abcdefghij",
        "NOTE       a long remark that can wrap",
    ]


def test_fit_hides_to_keep_rows_short():
    """A long remark squeezed into a narrow column would make every row tall: columns of
    higher priority go first to give it room."""
    headers = ["NAME", "INODE", "LINKS", "NAMES"]
    row = ["1-owaysetxlu", "4026534430", "4", " ".join(["word"] * 30)]
    fit = fit_widths([row], headers, 60, [0, 2, 2, 1])
    assert fit is not None and fit.hidden and 3 not in fit.hidden
    assert len(fit.cell_lines(row)) <= 4


def test_fit_does_not_hide_a_column_for_its_own_tall_cells():
    """`ns` with stale files: their long remark in NAMES is tall even alone beside a long
    NAME; NAMES stays (the short container names of other rows with it), other optional
    columns go first."""
    headers = ["NAME", "KIND", "INODE", "NAMES"]
    rows = [
        ["nstswarm-26957-40b49f/n1:ingress_sbox", "docker ingress", "4026533614", "ingress"],
        ["060f3a87ebd7", "broken", "", " ".join(["remark"] * 40)],
    ]
    fit = fit_widths(rows, headers, 80, [0, 0, 2, 1])
    assert fit is not None and fit.hidden == (2,) and 3 in fit.shown
