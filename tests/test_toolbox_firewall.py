"""`firewall` against the tools themselves run inside the namespace: `nft -j list ruleset`
and `iptables-save -c` (nft and legacy backends), on rules added in a test namespace and on
Docker's own rules in a real container sandbox."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from tests.conftest import netns_shell, unique
from tests.dockerenv import docker, engine_or_skip


def _inside(netns: str, *argv: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", netns, *argv], check=True, **kwargs)


def _save_rules(path: str, tool: str) -> list[tuple[str, str, int, int]]:
    """(table, rule, packets, bytes) from `<tool> -c` run in the namespace."""
    out = subprocess.check_output(["nsenter", f"--net={path}", tool, "-c"], text=True)
    rules, table = [], ""
    for line in out.splitlines():
        if line.startswith("*"):
            table = line[1:]
        found = re.match(r"^\[(\d+):(\d+)\] (-A .*)$", line)
        if found:
            rules.append((table, found.group(3), int(found.group(1)), int(found.group(2))))
    return rules


def _nft_rules(path: str) -> list[dict]:
    out = subprocess.check_output(["nsenter", f"--net={path}", "nft", "-j", "list", "ruleset"])
    return [i["rule"] for i in json.loads(out)["nftables"] if "rule" in i]


def _firewall(path: str, command: str = "firewall") -> list[dict]:
    run = netns_shell("--net", path, "--json", "-c", command)
    assert run.status == 0, run.stderr
    return run.json


def test_firewall_matches_nft_and_legacy_iptables(netns):
    path = f"/var/run/netns/{netns}"
    _inside(
        netns,
        "nft",
        "add table inet t; "
        "add chain inet t c { type filter hook output priority 0; policy accept; }; "
        'add rule inet t c ip daddr 127.0.0.1 counter accept comment "loop"; '
        "add rule inet t c tcp dport 22 counter drop",
    )
    _inside(netns, "iptables-legacy", "-A", "OUTPUT", "-d", "127.0.0.0/8", "-j", "ACCEPT")
    # real traffic through both rule sets: counters move
    _inside(netns, "busybox", "ping", "-c", "2", "127.0.0.1", stdout=subprocess.DEVNULL)
    mine = _firewall(path)
    rules = [r for r in mine if r["kind"] == "rule"]
    nft = _nft_rules(path)
    mine_nft = [r for r in rules if r["backend"] == "nftables"]
    assert [(r["table"], r["chain"], r["handle"]) for r in mine_nft] == [
        (r["table"], r["chain"], r["handle"]) for r in nft
    ]
    for got, ref in zip(mine_nft, nft, strict=True):
        counter = next(e["counter"] for e in ref["expr"] if "counter" in e)
        assert (got["packets"], got["bytes"]) == (counter["packets"], counter["bytes"])
    assert mine_nft[0]["packets"] >= 2 and mine_nft[0]["comment"] == "loop"
    assert mine_nft[0]["rule"].startswith("ip daddr 127.0.0.1 counter accept")
    assert mine_nft[1]["target"] == "drop"
    legacy = [
        (r["table"], r["rule"], r["packets"], r["bytes"])
        for r in rules
        if r["backend"] == "iptables-legacy"
    ]
    assert legacy == _save_rules(path, "iptables-legacy-save")
    assert legacy[0][2] >= 2  # the pings
    chains = {(r["backend"], r["chain"]): r for r in mine if r["kind"] == "chain"}
    assert chains[("nftables", "c")]["hook"] == "output"
    assert chains[("iptables-legacy", "OUTPUT")]["policy"] == "accept"


def test_firewall_filters_and_text(netns):
    path = f"/var/run/netns/{netns}"
    _inside(
        netns,
        "iptables-nft",
        "-t",
        "nat",
        "-A",
        "OUTPUT",
        "-d",
        "127.0.0.11",
        "-p",
        "udp",
        "--dport",
        "53",
        "-j",
        "DNAT",
        "--to-destination",
        "127.0.0.11:5353",
    )
    _inside(netns, "iptables-nft", "-A", "INPUT", "-s", "10.0.0.0/8", "-j", "DROP")
    mine = _firewall(path, "firewall -t nat OUTPUT")
    assert {r["table"] for r in mine} == {"nat"} and {r["chain"] for r in mine} == {"OUTPUT"}
    (rule,) = [r for r in mine if r["kind"] == "rule"]
    assert rule["backend"] == "iptables-nft" and rule["target"].lower() == "dnat"
    run = netns_shell("--net", path, "-c", "firewall -t nat")
    assert "dnat to 127.0.0.11:5353" in run.stdout
    assert "backend: iptables-nft" in run.stdout


@pytest.fixture(scope="module")
def container_sandbox():
    engine_or_skip("to start a container")
    from tests.test_docker import IMAGE, _ensure_image

    _ensure_image()
    name = unique("nst-fw")
    docker("network", "create", name)
    try:
        docker("run", "-d", "--name", name, "--network", name, IMAGE, "sleep", "100000")
        yield docker("inspect", "-f", "{{.NetworkSettings.SandboxKey}}", name)
    finally:
        docker("rm", "-f", name, check=False)
        docker("network", "rm", name, check=False)


def test_docker_embedded_dns_rules(container_sandbox):
    mine = _firewall(container_sandbox, "firewall -t nat")
    chains = {r["chain"] for r in mine}
    assert {"DOCKER_OUTPUT", "DOCKER_POSTROUTING"} <= chains
    rules = [r for r in mine if r["kind"] == "rule"]
    dnat = [r for r in rules if r["chain"] == "DOCKER_OUTPUT"]
    assert any("127.0.0.11" in r["rule"] and r["target"].lower() == "dnat" for r in dnat)
    if rules[0]["backend"] == "iptables-legacy":
        ref = _save_rules(container_sandbox, "iptables-legacy-save")
        assert [(r["table"], r["rule"], r["packets"], r["bytes"]) for r in rules] == ref
    else:
        ref = [r for r in _nft_rules(container_sandbox) if r["table"] == "nat"]
        assert [(r["chain"], r["handle"]) for r in rules] == [
            (r["chain"], r["handle"]) for r in ref
        ]
        assert {r["backend"] for r in rules} == {"iptables-nft"}
