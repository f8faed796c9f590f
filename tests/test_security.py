"""Attacks a hostile review tried, each reproduced against the real tool (docs/hardening.md)."""

from __future__ import annotations

import json
import subprocess

from tests.conftest import ip_json, netns_shell


def _batch(netns: str, lines) -> None:
    subprocess.run(
        ["ip", "-n", netns, "-batch", "-"], input="\n".join(lines) + "\n", text=True, check=True
    )


def _altname_lines(dev: str, count: int) -> list[str]:
    return [f"link property add dev {dev} altname a{i:03d}{'x' * 123}" for i in range(count)]


def test_a_link_message_bigger_than_64k_is_not_hidden(netns):
    """A veth with ~490 altnames of 127 bytes makes one RTM_NEWLINK of about 70 KiB, more than
    a 64 KiB receive buffer: the kernel cut it and the link vanished from every view."""
    _batch(
        netns,
        [
            "link add hid0 type veth peer name hid1",
            "link set hid0 up",
            "link set hid1 up",
            "addr add 198.51.100.1/24 dev hid0",
            *_altname_lines("hid0", 490),
        ],
    )
    ref = ip_json("-n", netns, "link", "show")
    assert "hid0" in [r["ifname"] for r in ref]
    mine = netns_shell(netns, "--json", "-c", "links")
    assert mine.status == 0, mine.stderr
    assert [r["ifname"] for r in mine.json] == [r["ifname"] for r in ref]
    (hidden,) = [r for r in mine.json if r["ifname"] == "hid0"]
    assert hidden["altnames"] == next(r for r in ref if r["ifname"] == "hid0")["altnames"]
    routes = netns_shell(netns, "--json", "-c", "routes -4")
    assert {r.get("dev") for r in routes.json} == {"hid0"}
    found = netns_shell("--json", "-c", "find hid0")
    assert [r["dev"] for r in found.json if r["netns"] == netns] == ["hid0"]
    ns = netns_shell("--json", "-c", "ns")
    (entry,) = [r for r in ns.json if r["name"] == netns]
    assert entry["links"] == len(ref)
    capture = netns_shell(netns, "-c", "capture -i hid0 --duration 0.2")
    assert capture.status == 0, capture.stderr
    assert "capturing on hid0" in capture.stderr
    peers = netns_shell(netns, "--json", "-c", "links -d hid1")
    assert peers.json[0]["link"] == "hid0"
    assert json.loads(netns_shell(netns, "--json", "-c", "topology").stdout)
