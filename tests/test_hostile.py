"""Hostile namespace content and faults: escapes in names, huge tables, churn, lo down."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time

import pytest

from netns_shell.namespace import NetNamespace
from netns_shell.netlink.core import (
    DumpInconsistentError,
    DumpInterruptedError,
    NetlinkSocket,
    dump_with_retry,
)
from netns_shell.netlink.links import RTM_GETLINK, link_request, list_links
from tests.conftest import bridge_json, ip_json, netns_shell

ESCAPE_NAME = b"\x1b[31mred"  # ESC is allowed in an interface name
RAW_ALIAS = b"\x1b]0;pwned\x07\xff\xfe" + b"A" * 200 + b"\x9b2J"  # OSC, invalid UTF-8, C1 CSI


def _batch(argv: list[str], lines) -> None:
    subprocess.run(argv, input="\n".join(lines) + "\n", text=True, check=True)


def _peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _run_measured(argv: list[str]) -> tuple[bytes, float, float]:
    """(stdout, seconds, peak RSS MiB) of the real CLI."""
    import sys

    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "netns_shell", *argv], stdout=subprocess.PIPE)
    chunks, peak = [], 0.0
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), False)
    while proc.poll() is None:
        peak = max(peak, _peak_rss_mib(proc.pid))
        try:
            data = proc.stdout.read()
            if data:
                chunks.append(data)
        except BlockingIOError:
            pass
        time.sleep(0.01)
    rest = proc.stdout.read()
    if rest:
        chunks.append(rest)
    assert proc.returncode == 0
    return b"".join(chunks), time.monotonic() - start, peak


def test_escapes_and_invalid_utf8_in_names_and_aliases(netns):
    subprocess.run(["ip", "-n", netns, "link", "add", ESCAPE_NAME, "type", "bridge"], check=True)
    subprocess.run(["ip", "-n", netns, "link", "set", ESCAPE_NAME, "alias", RAW_ALIAS], check=True)
    plain = netns_shell(netns, "-c", "links -d")
    assert plain.status == 0, plain.stderr
    assert "\x1b" not in plain.stdout and "\x07" not in plain.stdout and "\x9b" not in plain.stdout
    assert "\\x1b[31mred" in plain.stdout and "\\x07\\xff\\xfe" in plain.stdout
    run = netns_shell(netns, "--json", "-c", "links -d")
    assert run.stdout.isascii()
    (link,) = [r for r in json.loads(run.stdout) if r["ifname"] != "lo"]
    assert link["ifname"].encode("utf-8", "surrogateescape") == ESCAPE_NAME
    assert link["ifalias"].encode("utf-8", "surrogateescape") == RAW_ALIAS
    # the prompt of the REPL and every other human output goes through the same sanitizer
    find = netns_shell("-c", f"find {ESCAPE_NAME.decode()}")
    assert "\x1b" not in find.stdout and "\\x1b[31mred" in find.stdout


def test_loopback_down_namespace_works(netns):
    subprocess.run(["ip", "-n", netns, "link", "set", "lo", "down"], check=True)
    run = netns_shell(netns, "--json", "-c", "links; routes table all; neigh; fdb; bridges")
    assert run.status == 0, run.stderr
    links, routes, neigh, fdb, bridges = run.json_documents
    assert links[0]["ifname"] == "lo" and "UP" not in links[0]["flags"]
    assert routes == ip_json("-n", netns, "-4", "route", "show", "table", "all") + ip_json(
        "-n", netns, "-6", "route", "show", "table", "all"
    )
    assert neigh == [] and bridges == []
    assert fdb == bridge_json("-n", netns, "fdb", "show")


@pytest.mark.slow
def test_ten_thousand_interfaces(netns):
    # 5000 veth pairs: 10000 interfaces (bridges would take minutes to tear down)
    _batch(
        ["ip", "-n", netns, "-batch", "-"],
        (f"link add a{i} type veth peer name b{i}" for i in range(5000)),
    )
    out, _seconds, peak = _run_measured([netns, "--json", "-c", "links"])
    links = json.loads(out)
    assert len(links) == 10001
    assert [link["ifname"] for link in links] == [
        link["ifname"] for link in ip_json("-n", netns, "link", "show")
    ]
    assert peak < 200, f"peak RSS {peak:.0f} MiB"
    out, _, _ = _run_measured([netns, "-c", "links b4999"])
    assert out.decode().splitlines()[1].split()[1].startswith("b4999@")


@pytest.mark.slow
def test_hundred_thousand_fdb_entries_stream_in_bounded_memory(netns):
    _batch(
        ["ip", "-n", netns, "-batch", "-"],
        [
            "link add br0 type bridge",
            "link set br0 up",
            "link add vx0 type vxlan id 5 dstport 4789 local 192.0.2.1 nolearning",
            "link set vx0 master br0 up",
        ],
    )
    _batch(
        ["bridge", "-n", netns, "-batch", "-"],
        (
            f"fdb add 02:07:00:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x} dev vx0 "
            f"dst 198.18.{i >> 8 & 255}.{i & 255} self permanent"
            for i in range(100000)
        ),
    )
    out, _, peak = _run_measured([netns, "-c", "fdb"])
    rows = out.decode().splitlines()
    expected = len(bridge_json("-n", netns, "fdb", "show"))
    assert len(rows) == expected + 1  # header
    assert peak < 64, f"peak RSS {peak:.0f} MiB"
    out, _, _ = _run_measured([netns, "--json", "-c", "fdb dev vx0"])
    assert len(json.loads(out)) == len(bridge_json("-n", netns, "fdb", "show", "dev", "vx0"))


def test_interfaces_deleted_during_dumps_are_retried(netns):
    _batch(
        ["ip", "-n", netns, "-batch", "-"],
        (f"link add s{i} type veth peer name t{i}" for i in range(750)),
    )
    stop = threading.Event()

    def churn():
        i = 0
        while not stop.is_set():
            subprocess.run(
                ["ip", "-n", netns, "link", "add", f"c{i % 50}", "type", "bridge"],
                capture_output=True,
            )
            subprocess.run(
                ["ip", "-n", netns, "link", "del", f"c{(i - 25) % 50}"], capture_output=True
            )
            i += 1
            time.sleep(0.05)

    worker = threading.Thread(target=churn, daemon=True)
    worker.start()
    flagged = consistent = warned = 0
    try:
        with NetNamespace.open_path(f"/var/run/netns/{netns}") as ns:
            with NetlinkSocket(ns) as sock:  # raw dumps: the kernel flags inconsistent ones
                for _ in range(40):
                    try:
                        for _chunk in sock.dump_chunks(RTM_GETLINK, link_request()):
                            pass
                    except DumpInterruptedError:
                        flagged += 1
            for _ in range(40):  # the query layer retries them
                links = []
                try:
                    links.extend(list_links(ns, addresses=False))
                except DumpInconsistentError:
                    warned += 1  # every retry was interrupted: rows shown, then a warning
                    continue
                indexes = [link["ifindex"] for link in links]
                assert len(indexes) == len(set(indexes))
                assert sum(link["ifname"].startswith(("s", "t")) for link in links) == 1500
                consistent += 1
    finally:
        stop.set()
        worker.join()
    assert flagged > 0, "churn never produced NLM_F_DUMP_INTR; the retry path went untested"
    assert consistent > warned, (consistent, warned)


def test_dump_with_retry_replays_an_interrupted_small_dump():
    attempts = []

    def dump():
        attempts.append(1)
        yield {"n": 1}
        if len(attempts) < 3:
            raise DumpInterruptedError("link")
        yield {"n": 2}

    assert list(dump_with_retry(dump)) == [{"n": 1}, {"n": 2}]
    assert len(attempts) == 3

    def always():
        yield {"n": 1}
        raise DumpInterruptedError("link")

    shown = []
    with pytest.raises(DumpInconsistentError):
        shown.extend(dump_with_retry(always, retries=2))
    assert shown == [{"n": 1}]  # the last attempt is shown, then the warning


def test_namespace_removed_while_inside(netns):
    run = netns_shell(netns, input=f"links\nexec ip netns del {netns}\nlinks\nhost\n")
    assert run.status == 0, run.stderr
    assert "is gone" in run.stderr and "still inside" in run.stderr
    assert run.stdout.count("lo") >= 2  # the namespace kept working after its file went
