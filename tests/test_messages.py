"""What the shell answers when a new user types what their fingers know (real CLI runs)."""

from __future__ import annotations

import pytest

from tests.conftest import ip_json, netns_shell


@pytest.mark.parametrize(
    "line, command",
    [
        ("ip a", "links"),
        ("ip -4 addr show", "links"),
        ("ip link", "links"),
        ("ip r", "routes"),
        ("ip route show table all", "routes"),
        ("ip n", "neigh"),
        ("bridge fdb show", "fdb"),
        ("brctl show", "bridges"),
        ("ss -tlnp", "sockets"),
        ("tcpdump -ni eth0", "capture"),
        ("addr", "links"),
        ("ifconfig", "links"),
        ("ethtool -k eth0", "offloads"),
        ("nc -zv 10.0.0.1 80", "tcping"),
        ("mtr 10.0.0.1", "traceroute"),
    ],
)
def test_iproute2_habits_are_pointed_to_the_command(line, command):
    run = netns_shell("-c", line)
    assert run.status == 2
    assert f"did you mean '{command}'" in run.stderr, run.stderr


def test_link_is_links(lab):
    run = netns_shell("--net", lab.entry_path, "--json", "-c", "link vxlan0")
    assert run.status == 0, run.stderr
    oracle = ip_json("-n", lab.overlay, "-d", "addr", "show", "dev", "vxlan0")
    assert [r["ifindex"] for r in run.json] == [oracle[0]["ifindex"]]


def test_find_of_a_name_that_is_nowhere_says_to_try_use():
    run = netns_shell("-c", "find bxweb")
    assert run.status == 0
    assert "no interface, address or MAC named 'bxweb'" in run.stdout + run.stderr
    assert "try `use bxweb`" in run.stdout + run.stderr


@pytest.mark.parametrize("text", ["10.0.9.999", "10.0.9", "fe80::1::2"])
def test_find_of_a_malformed_address_says_it_is_invalid(text):
    run = netns_shell("-c", f"find {text}")
    assert run.status == 2
    assert f"'{text}' is not a valid" in run.stderr, run.stderr


def test_help_use_says_container_network_and_pod_names_work():
    run = netns_shell("-c", "help use")
    text = " ".join(run.stdout.split())
    assert "Docker container" in text and "Docker network" in text and "pod" in text


@pytest.mark.parametrize("line, key", [("clear", "Ctrl-L"), ("history", "Ctrl-R")])
def test_what_other_shells_type_for_a_key_names_the_key(line, key):
    run = netns_shell("-c", line)
    assert run.status == 2
    assert key in run.stderr and len(run.stderr.splitlines()) == 1, run.stderr
