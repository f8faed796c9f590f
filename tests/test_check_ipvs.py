"""`ipvs-backends`: the IPVS real servers of lb_<netid> against the service's tasks.

The comparison is pure and tested on records shaped as the ipvs plugin's reader gives them
(one per real server; a service without servers is one record with server_address None).
On the real swarm it runs only where the kernel has ip_vs; this machine's has none
(`modprobe ip_vs` fails), so that test says so and skips, after checking that `check`
reports the same reason instead of a verdict.
"""

from __future__ import annotations

import os

import pytest

from netns_shell.check import ipvs_findings
from netns_shell.engine_view import Endpoint, EngineView, overlay_mac


def _view() -> EngineView:
    view = EngineView("n1", "198.18.0.11", "abc123def456", "web-net", lb_indexes={"web": 257})
    for ip, vtep, local in (("10.0.0.3", "198.18.0.11", True), ("10.0.0.4", "198.18.0.12", False)):
        view.endpoints[ip] = Endpoint(ip, overlay_mac(ip), vtep, f"web.{ip[-1]}", "web", local)
    view.endpoints["10.0.0.9"] = Endpoint("10.0.0.9", None, None, "c1", "", True)  # attachable
    lb = Endpoint("10.0.0.5", overlay_mac("10.0.0.5"), "198.18.0.11", "lb-web-net", "", True)
    view.load_balancer = view.endpoints["10.0.0.5"] = lb
    return view


def _server(fwmark: int, address: str | None) -> dict:
    """A record as plugins/ipvs.py's list_services gives it (the keys the check reads)."""
    return {"service": f"FWM {fwmark}", "family": "inet", "protocol": None, "fwmark": fwmark,
            "scheduler": "rr", "server_address": address, "server_port": 0 if address else None,
            "forward": "masq" if address else None, "weight": 1 if address else None}  # fmt: skip


def test_matching_real_servers_give_nothing():
    servers = [_server(257, "10.0.0.3"), _server(257, "10.0.0.4"), _server(258, "10.0.0.77")]
    assert ipvs_findings(_view(), servers, "/x/lb_abc123def") == []


def test_a_stale_and_a_missing_real_server():
    servers = [_server(257, "10.0.0.3"), _server(257, "10.0.0.66")]
    [finding] = ipvs_findings(_view(), servers, "/x/lb_abc123def")
    assert (finding["kind"], finding["node"]) == ("ipvs-backends", "n1")
    assert finding["severity"] == "error"
    assert finding["found"] == "10.0.0.3, 10.0.0.66" and finding["expected"] == "10.0.0.3, 10.0.0.4"
    assert "no task: 10.0.0.66" in finding["explanation"]
    assert "no traffic: 10.0.0.4" in finding["explanation"]
    assert finding["hint"] == "nsenter --net=/x/lb_abc123def ipvsadm -Ln -f 257"


def test_a_service_without_real_servers():
    [finding] = ipvs_findings(_view(), [_server(257, None)], "/x/lb_abc123def")
    assert finding["found"] == "no real server"


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.xdist_group("swarm")
def test_ipvs_backends_on_the_swarm(docker_swarm):
    from tests.swarmenv import run_check

    run = run_check(docker_swarm, "--cluster")
    if not os.path.exists("/proc/net/ip_vs"):
        assert run.status == 0, run.stderr
        lines = [line for line in run.stderr.splitlines() if " [direct] " in line]
        assert len(lines) == 3 and all(
            line.endswith("; ipvs: not checked: no ip_vs in the kernel") for line in lines
        ), run.stderr  # said per node, instead of a verdict
        pytest.skip("the kernel has no ip_vs (modprobe ip_vs fails here): no IPVS table to read")
    assert "ipvs-backends" not in {f["kind"] for f in run.json}
