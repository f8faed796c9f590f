"""Column reads are traced, not trusted: shared cells can never show another row's value.

With SharedRecords the renderer formats a cell once per Shared when the column
reads none of the records' own keys.  Which keys a column reads is found by
tracing its value function; a declared `reads` that misses a key read is a
loud ColumnReadsError.  The pure tests plant a wrong list and a column that
never declared one; the lab test traces every column of every registered table
command over the records it returns in a real overlay-shaped namespace.
"""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import pytest

from netns_shell.records import Shared, SharedRecord
from netns_shell.render import Column, ColumnReadsError, check_columns, write_plain

ROOT = Path(__file__).resolve().parent.parent


def _shared_rows(count: int) -> list[SharedRecord]:
    """Rows like the routes fast path makes: own 'dst', a shared tail."""
    shared = Shared({"gateway": "10.0.0.1", "dev": "eth0"}, frozenset(("dst",)))
    rows = []
    for i in range(count):
        row = SharedRecord({"dst": f"10.1.0.{i}"})
        row.update(shared.values)
        row.shared = shared
        rows.append(row)
    return rows


def _shown(records, columns) -> list[str]:
    out = io.StringIO()
    write_plain(records, columns, out)
    return out.getvalue().splitlines()


def test_a_wrong_reads_list_fails_loudly():
    # claims to read only the gateway, but shows the destination too
    wrong = Column("ROUTE", lambda r: f"{r['dst']} via {r['gateway']}", reads=("gateway",))
    with pytest.raises(ColumnReadsError) as caught:
        _shown(_shared_rows(3), [wrong])
    message = str(caught.value)
    assert "'ROUTE'" in message and "['dst']" in message and "reads=('gateway',)" in message
    # the same check without rendering (what the registry test below runs)
    with pytest.raises(ColumnReadsError):
        check_columns(_shared_rows(1), [wrong])


def test_a_column_without_reads_is_traced_and_shows_each_rows_own_value():
    route = Column("ROUTE", lambda r: f"{r['dst']} via {r['gateway']}")
    device = Column("DEV", lambda r: r.get("dev"))
    lines = _shown(_shared_rows(300), [route, device])
    assert lines[1:4] == [
        "10.1.0.0 via 10.0.0.1    eth0",
        "10.1.0.1 via 10.0.0.1    eth0",
        "10.1.0.2 via 10.0.0.1    eth0",
    ]
    assert lines[-1] == "10.1.0.299 via 10.0.0.1  eth0"
    assert len({line.split()[0] for line in lines[1:]}) == 300


def test_a_column_that_reads_another_own_key_for_some_values_is_not_cached_wrongly():
    """Keyed cells are reused only for values whose trace read no other own key."""
    shared = Shared({"dev": "eth0"}, frozenset(("dst", "note")))
    rows = []
    for i in range(200):
        row = SharedRecord({"dst": "default" if i % 2 else f"10.2.0.{i}", "note": f"n{i}"})
        row.update(shared.values)
        row.shared = shared
        rows.append(row)
    # reads 'note' only when dst is 'default': a cache keyed by dst alone would be wrong
    column = Column("X", lambda r: r["note"] if r["dst"] == "default" else r["dst"])
    lines = _shown(rows, [column])[1:]
    assert lines == [row["note"] if row["dst"] == "default" else row["dst"] for row in rows]


def test_whole_record_readers_are_never_shared():
    column = Column("KEYS", lambda r: ",".join(sorted(r)))
    lines = _shown(_shared_rows(2), [column])
    assert lines[1:] == ["dev,dst,gateway"] * 2
    with pytest.raises(ColumnReadsError):
        check_columns(_shared_rows(1), [Column("KEYS", lambda r: len(r), reads=("dst",))])


# commands that wait for traffic or a key press, probe the network, change
# state, move the session or only print text: no table to check
_NOT_TABLES = {
    "use",
    "host",
    "exec",
    "capture",
    "watch",
    "ping",
    "tcping",
    "traceroute",
    "arping",
    "dns",
    "help",
    "exit",
}


def _plugins(registry) -> None:
    for name in ("sockets", "ipvs"):
        spec = importlib.util.spec_from_file_location(
            f"cols_{name}", ROOT / "plugins" / f"{name}.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.register(registry)


def test_every_table_commands_columns_read_what_they_declare(lab):
    from netns_shell.commands import build_registry, parse_arguments
    from netns_shell.errors import NetnsShellError
    from netns_shell.namespace import NetNamespace
    from netns_shell.render import Console
    from netns_shell.session import Session

    registry = build_registry()
    _plugins(registry)
    member = lab.members[0]
    words = {
        "find": [[member.ip], [member.mac]],
        "offloads": [["br0"]],
        "links": [[], ["-d"], ["-s"]],
        "routes": [[], ["table", "all"]],
        "neigh": [[], ["-a"]],
    }
    console = Console(stdout=io.StringIO(), stderr=io.StringIO())
    session = Session(registry=registry, console=console)
    session.switch_to(NetNamespace.open_path(lab.entry_path))
    checked: dict[str, int] = {}
    try:
        for command in registry.commands.values():
            if command.name in _NOT_TABLES:
                continue
            for argv in words.get(command.name, [[]]):
                try:
                    result = command.handler(session, parse_arguments(command, argv))
                    records = list(result.records) if result.columns else []
                except NetnsShellError:
                    continue  # e.g. ipvs where the kernel has none: nothing to show
                checked[command.name] = checked.get(command.name, 0) + check_columns(
                    records, result.columns
                )
    finally:
        session.close()
    tried = set(registry.commands) - _NOT_TABLES
    assert {"ns", "links", "routes", "neigh", "fdb", "bridges", "find", "sockets"} <= set(checked)
    assert set(checked) <= tried
    # the big tables had rows to trace
    assert min(checked[name] for name in ("links", "routes", "neigh", "fdb")) > 0
