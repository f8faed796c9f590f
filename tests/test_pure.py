"""Pure tests: registry, argument parsing, rendering, sanitizing, completion, line splitting."""

from __future__ import annotations

import io
import json
import os

import pytest

from netns_shell.commands import build_registry
from netns_shell.commands.registry import Command, Param, Registry, parse_arguments
from netns_shell.completion import CompletionState, Expectation, candidates, expected_at
from netns_shell.errors import UsageError
from netns_shell.render import Column, Console, Renderer, Result, write_json, write_plain
from netns_shell.sanitize import for_terminal
from netns_shell.session import split_commands

REGISTRY = build_registry()


# ---------------------------------------------------------------- registry
def test_every_command_has_help_and_a_usage():
    for command in REGISTRY:
        assert command.summary and len(command.summary) < 100, command.name
        assert command.usage().startswith(command.name)
        for param in command.params:
            assert param.help, (command.name, param.dest)


def test_every_completion_a_param_names_is_a_registered_kind():
    from netns_shell.extensions import PluginLoader

    registry = build_registry()
    PluginLoader(lambda message: None)(registry)  # the shipped plugins too
    for command in registry:
        for param in command.params:
            assert param.complete is None or param.complete in registry.kinds, (
                command.name,
                param.dest,
                param.complete,
            )


def test_a_completion_kind_is_registered_once():
    registry = build_registry()
    with pytest.raises(ValueError, match="already registered"):
        registry.completion_kind("bridge")(lambda namespace: [])
    registry.completion_kind("vrf", description="vrf")(lambda namespace: ["blue", ("red", "r")])
    kind = registry.kinds.get("vrf")
    assert kind.collect(None, 10) == (("blue", "vrf"), ("red", "r"))
    state = CompletionState(gathered={"vrf": kind.collect(None, 10)})
    expect = Expectation("vrf", "r")
    assert list(candidates(expect, registry, state)) == [("red", "r")]


def test_design_command_names_are_registered():
    for name in (
        "ns",
        "use",
        "host",
        "links",
        "routes",
        "neigh",
        "fdb",
        "bridges",
        "exec",
        "help",
        "exit",
        "quit",
    ):
        assert REGISTRY.get(name) is not None, name


def test_registering_a_name_twice_is_an_error():
    registry = Registry()
    registry.add(Command("x", "one", lambda s, a: Result()))
    with pytest.raises(ValueError):
        registry.add(Command("x", "two", lambda s, a: Result()))
    with pytest.raises(ValueError):
        registry.add(Command("y", "three", lambda s, a: Result(), aliases=("x",)))


def test_unknown_command_suggests_closest():
    with pytest.raises(UsageError, match="did you mean 'neigh'"):
        REGISTRY.lookup("neihg")
    with pytest.raises(UsageError, match="did you mean 'neighbours'"):
        REGISTRY.lookup("nieghbours")
    with pytest.raises(UsageError, match="type 'help'"):
        REGISTRY.lookup("zzzzzz")


# ---------------------------------------------------------------- parsing
def test_parse_iproute2_style_keywords_and_switches():
    routes = REGISTRY.get("routes")
    args = parse_arguments(routes, ["-6", "table", "all", "dev", "eth0"])
    assert args == {"family": 10, "table": 0, "dev": "eth0"}
    assert parse_arguments(routes, [])["table"] is None
    assert parse_arguments(REGISTRY.get("fdb"), ["br", "br0"])["bridge"] == "br0"


def test_parse_rest_keeps_everything_after_the_program():
    args = parse_arguments(REGISTRY.get("exec"), ["-u", "ip", "-j", "link", "--", "x"])
    assert args["uts"] is True and args["command"] == ["ip", "-j", "link", "--", "x"]


@pytest.mark.parametrize(
    "words,message",
    [
        (["-x"], "unknown option '-x'"),
        (["eth0", "eth1"], "unexpected argument 'eth1'"),
    ],
)
def test_parse_errors(words, message):
    with pytest.raises(UsageError, match=message):
        parse_arguments(REGISTRY.get("links"), words)


def test_parse_missing_required_and_bad_value():
    with pytest.raises(UsageError, match="missing TARGET"):
        parse_arguments(REGISTRY.get("use"), [])
    with pytest.raises(UsageError, match="unknown routing table"):
        parse_arguments(REGISTRY.get("routes"), ["table", "nope"])
    command = Command(
        "n",
        "n",
        lambda s, a: Result(),
        params=(Param("count", ("-c",), metavar="N", convert=int, help="n"),),
    )
    with pytest.raises(UsageError, match="invalid value 'x'"):
        parse_arguments(command, ["-c", "x"])
    assert parse_arguments(command, ["-c", "5"]) == {"count": 5}


def test_split_commands():
    assert split_commands("links -d; fdb br br0;neigh") == [
        ["links", "-d"],
        ["fdb", "br", "br0"],
        ["neigh"],
    ]
    assert split_commands("exec sh -c 'echo a; echo b'") == [["exec", "sh", "-c", "echo a; echo b"]]
    assert split_commands(";; ;") == []
    with pytest.raises(UsageError):
        split_commands("exec 'open")


# -------------------------------------------------------------- rendering
HOSTILE = "eth\x1b[31m0\x07\udcff\u202e"


def test_sanitize_makes_controls_visible():
    shown = for_terminal(HOSTILE)
    assert shown == "eth\\x1b[31m0\\x07\\xff\\u202e"
    assert all(ch.isprintable() for ch in shown)
    assert for_terminal("plain-name") == "plain-name"
    assert for_terminal("a\\b") == "a\\\\b"  # backslashes escaped: no ambiguity


def test_json_stays_valid_and_exact_with_hostile_strings():
    out = io.StringIO()
    write_json(iter([{"ifname": HOSTILE, "n": 1}]), out)
    text = out.getvalue()
    assert text.isascii() and "\x1b" not in text
    (record,) = json.loads(text)
    assert record["ifname"] == HOSTILE
    assert record["ifname"].encode("utf-8", "surrogateescape") == HOSTILE.encode(
        "utf-8", "surrogateescape"
    )


def test_json_empty_is_an_empty_array():
    out = io.StringIO()
    write_json(iter([]), out)
    assert json.loads(out.getvalue()) == []


def test_plain_output_aligned_and_sanitized():
    out = io.StringIO()
    rows = [{"a": "x", "b": 1}, {"a": HOSTILE, "b": 22}]
    write_plain(rows, (Column.of("A", "a"), Column.of("B", "b")), out)
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["A", "B"]
    assert "\x1b" not in out.getvalue()
    assert len({line.index(b) for line, b in zip(lines, ["B", "1", "22"], strict=True)}) == 1


def test_plain_output_streams_past_the_width_sample():
    consumed = []

    def rows():
        for i in range(5000):
            consumed.append(i)
            yield {"n": i}

    class Probe(io.StringIO):
        lines_seen_when_first_written = None

        def write(self, text):
            if self.lines_seen_when_first_written is None:
                self.lines_seen_when_first_written = len(consumed)
            return super().write(text)

    out = Probe()
    write_plain(rows(), (Column.of("N", "n"),), out)
    assert out.lines_seen_when_first_written <= 1000  # did not wait for the whole table
    assert len(out.getvalue().splitlines()) == 5001


def test_renderer_json_mode_sends_notes_to_stderr():
    console = Console(stdout=io.StringIO(), stderr=io.StringIO(), json=True)
    Renderer(console).render(Result.note("now in x"))
    Renderer(console).render(Result.table(iter([{"k": 1}]), (Column.of("K", "k"),)))
    assert json.loads(console.stdout.getvalue()) == [{"k": 1}]
    assert console.stderr.getvalue() == "now in x\n"


# ------------------------------------------------------------- completion
STATE = CompletionState(
    namespaces={"1-9tp0f348do": "docker overlay", "blue": "named"},
    interfaces={"br0": "bridge", "vxlan0": "vxlan", "veth0": "veth"},
    bridges=("br0",),
)


def _complete(text: str) -> list[str]:
    return [word for word, _ in candidates(expected_at(REGISTRY, text), REGISTRY, STATE)]


def test_complete_command_names():
    assert _complete("") == REGISTRY.names(aliases=True)
    assert _complete("li") == ["link", "links"]
    assert "fdb" in _complete("f")


def test_complete_namespaces_after_use():
    assert _complete("use ") == ["1-9tp0f348do", "blue"]
    assert _complete("use 1-") == ["1-9tp0f348do"]


def test_complete_interfaces_and_bridges_by_keyword():
    assert _complete("fdb br ") == ["br0"]
    assert _complete("fdb dev v") == ["vxlan0", "veth0"]
    assert set(_complete("fdb ")) == {"br", "dev"}
    assert _complete("fdb br br0 ") == ["dev"]
    assert _complete("links ") == ["br0", "vxlan0", "veth0"]
    assert "table" in _complete("routes ")
    assert _complete("routes table a") == ["all"]


def test_complete_options_and_after_semicolon():
    assert _complete("links -") == ["-d", "--details", "-s", "--stats"]
    assert _complete("neigh -4; fdb b") == ["br"]
    assert _complete("nosuchcommand ") == []


def test_shared_records_render_like_plain_dicts():
    from netns_shell.records import Shared, SharedRecord
    from netns_shell.render import RowFormatter

    shared = Shared({"dev": "br0", "flags": []}, frozenset(("dst",)))
    columns = (
        Column.of("DST", "dst", safe=True),
        Column.of("DEV", "dev"),
        Column("X", lambda r: r["dst"] + r["dev"], reads=None),
        Column.of("FLAGS", "flags"),
    )
    records = []
    for dst in ("10.0.0.1", "10.0.0.2"):
        record = SharedRecord({"dst": dst})
        record.update(shared.values)
        record.shared = shared
        records.append(record)
    formatter = RowFormatter(columns, [10, 5, 15, 5])
    plain = [formatter.cells(dict(r)) for r in records]
    assert [formatter.cells(r) for r in records] == plain
    assert plain[1] == ("10.0.0.2", "br0", "10.0.0.2br0", "")
    assert json.loads(json.dumps(records[0])) == {"dst": "10.0.0.1", "dev": "br0", "flags": []}


def _shared_rows():
    """SharedRecords as the dumps build them: own keys around the shared ones, some absent."""
    from netns_shell.records import Shared, SharedRecord

    shared = Shared(
        {"dev": HOSTILE, "state": ["PERMANENT"], "n": 7, "pct": "100%s%d", "nil": None, "%s": 1},
        frozenset(("dst", "lladdr")),
    )
    other = Shared({"dev": "br0", "vni": 4097}, frozenset(("dst", "lladdr")))
    rows = []
    for i, (dst, lladdr, part) in enumerate(
        [
            ("10.0.0.1", None, shared),  # an own key absent first: no template from it
            ("10.0.0.2", "02:00:00:00:00:02", shared),
            ("fd00::3", "x\x1b%s\u00e9", shared),
            (None, "02:00:00:00:00:04", other),
            ("10.0.0.5", 5, other),  # an own value that is not a string
            ("10.0.0.6", ["a", "%"], other),
        ]
    ):
        record = SharedRecord({"dst": dst} if dst is not None else {})
        record.update({"dev": part.values["dev"]})
        if lladdr is not None:
            record["lladdr"] = lladdr
        record.update({k: v for k, v in part.values.items() if k != "dev"})
        record.shared = part
        rows.append(record)
        if i == 1:
            rows.append({"plain": "dict", "i": i})
    return rows


def test_json_of_shared_records_is_what_json_dumps_writes():
    rows = _shared_rows() * 3
    for batch in (1, 4, 256):
        out = io.StringIO()
        write_json(iter(rows), out, batch=batch)
        assert out.getvalue() == json.dumps(rows, separators=(",", ":")) + "\n"


def test_cells_of_a_computed_column_cached_per_shared_value():
    from netns_shell.render import RowFormatter

    columns = (
        Column.of("DST", "dst", safe=True),
        Column("REMOTE", lambda r: f"{r.get('dst')} vni {r.get('vni')}", reads=("dst", "vni")),
        Column.of("LL", "lladdr"),
        Column.of("DEV", "dev"),
    )
    rows = _shared_rows() * 2
    rows = [r for r in rows if "plain" not in r]
    formatter = RowFormatter(columns, [10, 20, 20, 10])
    expected = [RowFormatter(columns, [10, 20, 20, 10]).cells(dict(r)) for r in rows]
    assert [formatter.cells(r) for r in rows] == expected
    assert expected[4][1] == "10.0.0.5 vni 4097"


def test_json_batches_make_one_valid_array():
    out = io.StringIO()
    write_json(iter({"n": i} for i in range(1000)), out)
    assert json.loads(out.getvalue()) == [{"n": i} for i in range(1000)]


def test_json_array_stays_whole_when_the_records_fail_midway():
    def rows():
        yield {"n": 1}
        yield {"n": 2}
        raise RuntimeError("gone")

    out = io.StringIO()
    with pytest.raises(RuntimeError):
        write_json(rows(), out, batch=1)
    assert json.loads(out.getvalue()) == [{"n": 1}, {"n": 2}]


def test_a_missing_pager_prints_the_table_itself(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setenv("PAGER", "no-such-pager-xyz --flag")
    monkeypatch.setattr(
        "shutil.get_terminal_size", lambda fallback=None: os.terminal_size((80, 10))
    )
    console = Console(stdout=Terminal(), stderr=io.StringIO())
    rows = [{"n": i} for i in range(50)]
    Renderer(console).render(Result.table(iter(rows), (Column.of("N", "n"),)))
    lines = console.stdout.getvalue().splitlines()
    assert [line.strip() for line in lines[2:]] == [str(i) for i in range(50)]
