"""Fuzzing (hypothesis): the command-line and REPL parsers, and the netlink decoders.

Random and truncated inputs must end either in a result or in a typed error
(UsageError, MalformedMessageError): never in an exception that would reach
the user as a traceback.  NETNS_SHELL_FUZZ_EXAMPLES sets the number of
examples per target (default 300; the figures in docs/hardening.md come from
a run with 5000).
"""

from __future__ import annotations

import io
import os
import socket
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netns_shell.cli import build_parser
from netns_shell.commands import build_registry
from netns_shell.commands.registry import parse_arguments
from netns_shell.completion import CompletionState, candidates, expected_at
from netns_shell.errors import UsageError
from netns_shell.netlink.core import MalformedMessageError
from netns_shell.netlink.links import LinkTable, parse_address, parse_link
from netns_shell.netlink.monitor import TOPICS, _events
from netns_shell.netlink.neighbours import (
    _fdb_records,
    _neighbour_records,
    parse_fdb,
    parse_neighbour,
)
from netns_shell.netlink.routes import _RouteTemplates, parse_route
from netns_shell.session import split_commands

EXAMPLES = int(os.environ.get("NETNS_SHELL_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
REGISTRY = build_registry()

# ------------------------------------------------------------ netlink input
ATTR_TYPES = st.sampled_from(
    [
        0,
        1,
        2,
        3,
        4,
        5,
        6,
        7,
        8,
        9,
        10,
        12,
        13,
        15,
        16,
        18,
        20,
        23,
        29,
        30,
        37,
        46,
        50,
        52,
        53,
        61,
        0x8000 | 18,
        0x8000 | 2,
    ]
)


@st.composite
def attributes(draw, depth: int = 0) -> bytes:
    """A run of netlink attributes, some nested, some with lying lengths."""
    out = b""
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(ATTR_TYPES)
        if depth < 2 and draw(st.booleans()) and draw(st.booleans()):
            value = draw(attributes(depth + 1))
        else:
            value = draw(st.binary(max_size=24))
        length = 4 + len(value)
        if draw(st.integers(0, 9)) == 0:
            length = draw(st.integers(0, 120))  # a length that does not match
        out += struct.pack("=HH", length, kind) + value + b"\0" * (-len(value) % 4)
    return out


@st.composite
def messages(draw, header: int) -> bytes:
    """A message payload: a header of about the right size, then attributes, maybe cut."""
    body = draw(st.binary(min_size=0, max_size=header + 4)) + draw(attributes())
    if draw(st.booleans()):
        body = body[: draw(st.integers(0, len(body)))]
    return body


def _decodes_or_rejects(call) -> None:
    try:
        call()
    except MalformedMessageError:
        pass


@FUZZ
@given(messages(16))
def test_link_decoder(data):
    _decodes_or_rejects(lambda: parse_link(data, 0, len(data), LinkTable()))


@FUZZ
@given(messages(8))
def test_address_decoder(data):
    _decodes_or_rejects(lambda: parse_address(data, 0, len(data)))


@FUZZ
@given(messages(12), st.booleans())
def test_route_decoder(data, show_table):
    _decodes_or_rejects(lambda: parse_route(data, 0, len(data), {1: "lo"}, show_table))


@FUZZ
@given(messages(12))
def test_neighbour_and_fdb_decoders(data):
    _decodes_or_rejects(lambda: parse_neighbour(data, 0, len(data), {}))
    _decodes_or_rejects(lambda: parse_fdb(data, 0, len(data), {}))


@st.composite
def chunks(draw, msg_type: int, header: int) -> tuple[bytes, list[tuple[int, int, int]]]:
    """A received datagram's payloads, as the fast paths see them (message bounds known)."""
    data, bounds = b"", []
    for _ in range(draw(st.integers(1, 5))):
        payload = draw(messages(header))
        start = len(data)
        data += payload + b"\0" * (-len(payload) % 4)
        bounds.append((msg_type, start, start + len(payload)))
    return data, bounds


@FUZZ
@given(
    chunks(24, 12),
    st.sampled_from([socket.AF_INET, socket.AF_INET6]),
    st.sampled_from([0, 254, 100]),
)
def test_route_fast_path(chunk, family, table):
    data, bounds = chunk
    templates = _RouteTemplates(family, table, 0, {1: "lo"}, table != 254)
    _decodes_or_rejects(lambda: templates.records(data, bounds))
    _decodes_or_rejects(lambda: templates.records(data, bounds))  # now from the caches


@FUZZ
@given(chunks(28, 12), st.sampled_from([socket.AF_INET, socket.AF_INET6]), st.booleans())
def test_neighbour_and_fdb_fast_paths(chunk, family, show_all):
    data, bounds = chunk
    _decodes_or_rejects(lambda: _neighbour_records(data, bounds, {}, family, 0, show_all, {}))
    _decodes_or_rejects(lambda: _fdb_records(data, bounds, {}, 0, {}))


@FUZZ
@given(st.binary(max_size=400), st.sets(st.sampled_from(sorted(TOPICS)), min_size=1))
def test_event_decoder(data, topics):
    _decodes_or_rejects(lambda: _events(data, LinkTable(), tuple(sorted(topics))))


# ------------------------------------------------------- command-line input
WORDS = st.one_of(
    st.sampled_from(
        sorted(
            {f for c in REGISTRY for f in c.option_words()}
            | {
                "br0",
                "eth0",
                "all",
                "main",
                "100",
                "-1",
                "1e9",
                "--",
                "-",
                "'",
                '"',
                ";",
                "\\",
                "pid:1",
                "/nope",
            }
        )
    ),
    st.text(max_size=12),
)


@FUZZ
@given(st.text(max_size=200))
def test_line_splitter(text):
    try:
        commands = split_commands(text)
    except UsageError:
        return
    assert all(words for words in commands)


@FUZZ
@given(st.sampled_from(REGISTRY.names()), st.lists(WORDS, max_size=8))
def test_argument_parser(name, words):
    try:
        args = parse_arguments(REGISTRY.get(name), words)
    except UsageError:
        return
    assert isinstance(args, dict)


@FUZZ
@given(st.text(max_size=80))
def test_completion(text):
    state = CompletionState(
        namespaces={"a": "named"}, interfaces={"eth0": "veth"}, bridges=("br0",)
    )
    expect = expected_at(REGISTRY, text)
    for word, meta in candidates(expect, REGISTRY, state) if expect.kind != "file" else ():
        assert isinstance(word, str) and isinstance(meta, str)


@FUZZ
@given(
    st.lists(
        st.one_of(
            st.sampled_from(
                [
                    "--json",
                    "--net",
                    "-t",
                    "-c",
                    "--list",
                    "--demo",
                    "--read-only",
                    "--plugin-dir",
                    "-n",
                    "x",
                    "1",
                    "--completion",
                    "bash",
                    "--complete",
                ]
            ),
            st.text(max_size=10),
        ),
        max_size=6,
    )
)
def test_command_line(argv):
    try:
        build_parser().parse_args(argv)
    except UsageError:
        pass
    except SystemExit as exc:  # --help / --version print and exit 0
        assert exc.code == 0


# ----------------------------------------------- the whole error boundary
SAFE = ("links", "routes", "neigh", "fdb", "bridges", "help", "host", "exit", "use")


@pytest.fixture(scope="module")
def safe_session(lab, tmp_path_factory):
    """A session in a lab namespace whose registry holds only read-only, local commands.

    Lines may end in `> FILE` or `| PROGRAM`: they run in an empty directory with an
    empty PATH, so files land there and no host program is ever found.
    """
    from netns_shell.commands.registry import Registry
    from netns_shell.namespace import NetNamespace
    from netns_shell.render import Console
    from netns_shell.session import Session

    registry = Registry()
    for command in REGISTRY:
        if command.name in SAFE:
            registry.add(command)
    console = Console(stdout=io.StringIO(), stderr=io.StringIO())
    session = Session(registry=registry, console=console)
    session.switch_to(NetNamespace.open_path(lab.entry_path))
    sandbox = tmp_path_factory.mktemp("fuzz-cwd")
    (sandbox / "bin").mkdir()
    cwd, path = os.getcwd(), os.environ.get("PATH", "")
    os.chdir(sandbox)
    os.environ["PATH"] = str(sandbox / "bin")
    try:
        yield session
    finally:
        os.chdir(cwd)
        os.environ["PATH"] = path
        session.close()


@settings(
    max_examples=max(EXAMPLES // 3, 50),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.lists(WORDS, min_size=1, max_size=6).map(" ".join))
def test_no_line_reaches_the_user_as_a_traceback(safe_session, line):
    from netns_shell.errors import ExitShell

    console = safe_session.console
    console.stdout.seek(0)
    console.stdout.truncate()
    console.stderr.seek(0)
    console.stderr.truncate()
    try:
        safe_session.execute(line)
    except ExitShell:
        pass
    errors = console.stderr.getvalue()
    assert "Traceback" not in errors and "internal error" not in errors, (line, errors)
