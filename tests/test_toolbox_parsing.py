"""Option words as people type them: attached values (-c1, -ieth0) and combined switches
(-4a, -nc5), in every command; `capture -n` accepted."""

from __future__ import annotations

import socket

import pytest

from netns_shell.commands import build_registry, parse_arguments
from netns_shell.errors import UsageError
from tests.conftest import netns_shell

REGISTRY = build_registry()


def _parse(command: str, *words: str) -> dict:
    return parse_arguments(REGISTRY.get(command), list(words))


def test_attached_values():
    assert _parse("ping", "-c1", "10.0.0.1")["count"] == 1
    args = _parse("capture", "-ieth0", "-c5", "udp", "port", "53")
    assert (args["iface"], args["count"], args["filter"]) == ("eth0", 5, ["udp", "port", "53"])
    assert _parse("ping", "-s1472", "-Mdo", "x")["size"] == 1472
    assert _parse("ping", "-Mdo", "x")["pmtu"] == "do"


def test_combined_switches_and_a_last_value():
    args = _parse("neigh", "-4a")
    assert args["family"] == socket.AF_INET and args["all"] is True
    args = _parse("capture", "-nc5", "icmp")
    assert args["numeric"] is True and args["count"] == 5 and args["filter"] == ["icmp"]
    args = _parse("capture", "-npi", "eth0")
    assert args["no_promisc"] is True and args["iface"] == "eth0"
    assert _parse("links", "-ds")["stats"] is True


@pytest.mark.parametrize(
    "command,words,message",
    [
        ("neigh", ["-4x"], "unknown option '-x' in '-4x'"),
        ("ping", ["-nc1", "h"], "unknown option '-n'"),
        ("capture", ["-nc"], "-c needs a value"),
        ("ping", ["-cx", "h"], "invalid value 'x'"),
        ("ping", ["-Mmaybe", "h"], "expected one of do, dont, want"),
    ],
)
def test_cluster_errors(command, words, message):
    with pytest.raises(UsageError, match=message):
        parse_arguments(REGISTRY.get(command), words)


def test_negative_numbers_and_long_options_unchanged():
    assert _parse("capture", "--count=3")["count"] == 3
    with pytest.raises(UsageError, match="unknown option '--nope'"):
        _parse("capture", "--nope")


def test_end_to_end_attached_count(netns):
    run = netns_shell(
        "--net", f"/var/run/netns/{netns}", "--json", "-c", "ping -c1 -W0.5 127.0.0.1"
    )
    assert run.status == 0, run.stderr
    assert len(run.json) == 1 and run.json[0]["from"] == "127.0.0.1"
