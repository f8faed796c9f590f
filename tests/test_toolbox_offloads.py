"""`offloads` against `ethtool --json -k` run inside a real test namespace."""

from __future__ import annotations

import json
import subprocess

import pytest

from netns_shell.offloads import vxlan_offload_findings
from tests.conftest import netns_shell


def _ethtool(path: str, ifname: str) -> dict:
    out = subprocess.check_output(["nsenter", f"--net={path}", "ethtool", "--json", "-k", ifname])
    return json.loads(out)[0]


@pytest.mark.parametrize("kind", ["veth", "vxlan"])
def test_offloads_match_ethtool(netns, kind):
    path = f"/var/run/netns/{netns}"
    if kind == "veth":
        subprocess.run(
            ["ip", "-n", netns, "link", "add", "o0", "type", "veth", "peer", "o1"], check=True
        )
        # a change the driver accepts, so requested/active are not all defaults
        subprocess.run(
            ["nsenter", f"--net={path}", "ethtool", "-K", "o0", "tx-checksum-ip-generic", "off"],
            check=True,
        )
    else:
        subprocess.run(
            ["ip", "-n", netns, *"link add o0 type vxlan id 42 dstport 4789".split()],
            check=True,
        )
    run = netns_shell("--net", path, "--json", "-c", "offloads -a o0")
    assert run.status == 0, run.stderr
    mine = {r["ethtool"]: r for r in run.json}
    ref = {k: v for k, v in _ethtool(path, "o0").items() if k != "ifname"}
    # ethtool's aggregate lines (tx-checksumming, scatter-gather, tcp-segmentation-offload)
    # have no kernel feature of their own: fixed is null there
    ref = {k: v for k, v in ref.items() if v["fixed"] is not None}
    assert set(mine) == set(ref)
    for name, state in ref.items():
        got = mine[name]
        assert (got["active"], got["fixed"], got["requested"]) == (
            state["active"],
            state["fixed"],
            state["requested"],
        ), name
    assert {r["driver"] for r in run.json} == {kind}
    if kind == "veth":
        assert mine["tx-checksum-ip-generic"]["active"] is False


def test_offloads_table_and_unknown_interface(netns):
    subprocess.run(["ip", "-n", netns, *"link add o0 type veth peer o1".split()], check=True)
    run = netns_shell("--net", f"/var/run/netns/{netns}", "-c", "offloads o0")
    assert run.status == 0, run.stderr
    assert "tx-udp_tnl-segmentation" in run.stdout and "driver: veth" in run.stdout
    assert "[fixed]" not in run.stdout.replace("on [fixed]", "")  # fixed-off rows hidden
    bad = netns_shell("--net", f"/var/run/netns/{netns}", "-c", "offloads nosuch0")
    assert bad.status != 0 and "no interface named 'nosuch0'" in bad.stderr


def _feature(name: str, active: bool, driver: str) -> dict:
    return {"ifname": "ens192", "driver": driver, "feature": name, "active": active}


def test_vxlan_breaking_combination_is_flagged_for_vmxnet3_only():
    bad = [
        _feature("tx-checksum-ip-generic", True, "vmxnet3"),
        _feature("tx-udp_tnl-segmentation", True, "vmxnet3"),
    ]
    (finding,) = vxlan_offload_findings(bad)
    assert "ethtool -K ens192 tx-checksum-ip-generic off" in finding
    assert "tx-udp_tnl-segmentation" in finding
    fixed = [_feature("tx-checksum-ip-generic", False, "vmxnet3")]
    assert vxlan_offload_findings(fixed) == []
    other = [_feature("tx-checksum-ip-generic", True, "virtio_net")]
    assert vxlan_offload_findings(other) == []
