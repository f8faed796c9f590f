"""`ns` against `ip netns list` and `lsns -t net`: every namespace found, paths and kinds right."""

from __future__ import annotations

import json
import os
import secrets
import subprocess

from tests.conftest import netns_shell, unique


def _ns(env: dict | None = None) -> list[dict]:
    run = netns_shell("--json", "--list", env=env)
    assert run.status == 0, run.stderr
    return run.json


def _lsns() -> list[dict]:
    return json.loads(subprocess.check_output(["lsns", "-t", "net", "-J"]))["namespaces"]


def test_every_lsns_namespace_is_listed(lab):
    before = _lsns()
    mine = {r["inode"]: r for r in _ns()}
    after = {n["ns"] for n in _lsns()}
    for ns in before:
        if ns["ns"] not in after:
            continue  # went away meanwhile (another test)
        assert ns["ns"] in mine, ns
        if ns.get("nsfs"):
            real = {os.path.realpath(p) for p in mine[ns["ns"]]["paths"]}
            # lsns joins the paths of a namespace mounted at several places with a newline
            assert {os.path.realpath(p) for p in ns["nsfs"].split("\n")} <= real
        if ns.get("pid"):
            assert ns["pid"] in mine[ns["ns"]]["pids"] or not os.path.exists(f"/proc/{ns['pid']}")


def test_every_ip_netns_name_is_listed_with_its_path(lab):
    names = subprocess.check_output(["ip", "netns", "list"], text=True).split("\n")
    names = [line.split()[0] for line in names if line.strip()]
    records = _ns()
    by_path = {p: r for r in records for p in r["paths"]}
    for role in lab.roles:
        assert lab.name(role) in names
        record = by_path[lab.path(role)]
        assert record["name"] == lab.name(role)
        assert record["kind"] == "named"
        assert record["inode"] == os.stat(lab.path(role)).st_ino
    assert by_path[lab.entry_path]["links"] == 2 + 1 + len(lab.members)  # lo, br0, vxlan0, veths


def test_host_namespace_first_and_current_marked():
    records = _ns()
    assert records[0]["kind"] == "host"
    current = [r for r in records if r["current"]]
    assert len(current) == 1
    assert current[0]["inode"] == os.stat("/proc/self/ns/net").st_ino


def test_process_only_namespace(process_netns):
    inode = os.stat(f"/proc/{process_netns}/ns/net").st_ino
    record = next(r for r in _ns() if r["inode"] == inode)
    assert record["kind"] == "process"
    assert record["paths"] == []
    assert record["pids"] == [process_netns]
    assert record["processes"] == [{"pid": process_netns, "comm": "sleep"}]
    assert record["name"] == f"pid:{process_netns}"
    run = netns_shell(record["name"], "--json", "-c", "links")
    assert [link["ifname"] for link in run.json] == ["lo"]


def test_every_holder_process_is_named_like_ps_names_it():
    """However many processes hold a namespace (the host's: all of them), each is named."""
    holders = [subprocess.Popen(["sleep", "60"]) for _ in range(70)]  # more than one screenful
    try:
        host = _ns()[0]
        named = {p["pid"]: p["comm"] for p in host["processes"]}
        assert {named.get(h.pid) for h in holders} == {"sleep"}, named
        # kernel workers rename themselves: what ps says is compared for the rest as a name
        ps = subprocess.check_output(["ps", "-e", "-o", "pid="], text=True)
        alive = {int(pid) for pid in ps.split()} & set(named)
        assert len(alive) > 70
        assert all(named[pid] for pid in alive), [pid for pid in alive if not named[pid]]
    finally:
        for holder in holders:
            holder.kill()
            holder.wait()


def test_docker_and_cni_kinds_from_file_names(tmpdir_clean):
    docker = tmpdir_clean / "docker" / "netns"
    cni = tmpdir_clean / "netns"
    docker.mkdir(parents=True)
    cni.mkdir()
    # unique names: bind mounts are visible host-wide, and a name another test's namespace
    # holds at the same moment would be qualified by its directory (see test_catalogue)
    token = secrets.token_hex(5)
    overlay = docker / f"1-{token}"
    names = {
        overlay: "docker overlay",
        docker / f"lb_{token[:9]}": "docker lb",
        docker / "ingress_sbox": "docker ingress",
        docker / f"{token}ab": "docker sandbox",
        cni / f"cni-{token[:8]}-0000-1111-2222-333344445555": "cni pod",
        cni / f"plain{token}": "named",
    }
    for path in names:
        path.touch()
        subprocess.run(["unshare", f"--net={path}", "true"], check=True)
    broken = docker / f"{token}cd"
    broken.touch()  # an empty file: a leftover, or a bind mount that did not propagate
    records = _ns({"NETNS_SHELL_PATH": f"{docker}:{cni}"})
    by_path = {p: r for r in records for p in r["paths"]}
    for path, kind in names.items():
        assert by_path[str(path)]["kind"] == kind, path
        if path.name == "ingress_sbox":  # a fixed name: another run may hold one too
            name = by_path[str(path)]["name"]
            assert name in (path.name, str(path)) or name.endswith(f":{path.name}"), name
        else:
            assert by_path[str(path)]["name"] == path.name
        assert by_path[str(path)]["links"] == 1  # lo
    assert by_path[str(broken)]["kind"] == "broken"
    assert "nothing is mounted on it" in by_path[str(broken)]["error"]  # not a volume here
    # entering through the name works like through the path
    run = netns_shell(overlay.name, "--json", "-c", "links", env={"NETNS_SHELL_PATH": str(docker)})
    assert run.status == 0, run.stderr


def test_bind_mount_elsewhere_is_found(tmpdir_clean):
    path = tmpdir_clean / "somewhere" / "held"
    path.parent.mkdir()
    path.touch()
    subprocess.run(["unshare", f"--net={path}", "true"], check=True)
    record = next(r for r in _ns() if str(path) in r["paths"])
    assert record["kind"] == "bind mount"
    assert record["inode"] == os.stat(path).st_ino


def test_two_paths_one_namespace(tmpdir_clean, netns):
    alias = tmpdir_clean / "alias"
    alias.touch()
    subprocess.run(["mount", "--bind", f"/var/run/netns/{netns}", str(alias)], check=True)
    record = next(r for r in _ns() if r["name"] == netns)
    assert f"/var/run/netns/{netns}" in record["paths"]
    assert str(alias) in record["paths"]


def test_human_listing_marks_current_and_shows_names(lab):
    run = netns_shell("--net", lab.entry_path, "--list")
    assert run.status == 0
    line = next(x for x in run.stdout.splitlines() if lab.overlay in x)
    assert line.startswith("* ")
    assert "named" in line


def test_an_engine_with_its_own_exec_root_has_docker_kinds(tmpdir_clean):
    """dockerd --exec-root=DIR keeps its namespaces in DIR/netns beside DIR/libnetwork: they
    are Docker's (overlay, sandbox, ...) wherever DIR is; a plain `netns` directory is not."""
    engine = tmpdir_clean / "engine-b"
    (engine / "netns").mkdir(parents=True)
    (engine / "libnetwork").mkdir()
    plain = tmpdir_clean / "plain" / "netns"
    plain.mkdir(parents=True)
    files = {
        engine / "netns" / "1-abcdefgh12": "docker overlay",
        engine / "netns" / "0123456789ab": "docker sandbox",
        engine / "netns" / "ingress_sbox": "docker ingress",
        plain / "1-abcdefgh12": "named",
    }
    for path in files:
        path.touch()
        subprocess.run(["unshare", f"--net={path}", "true"], check=True)
    records = _ns({"NETNS_SHELL_PATH": f"{engine / 'netns'}:{plain}"})
    by_path = {p: r for r in records for p in r["paths"]}
    for path, kind in files.items():
        assert by_path[str(path)]["kind"] == kind, path


def test_an_engines_default_alias_does_not_rename_a_named_namespace(tmpdir_clean):
    """dockerd keeps `<exec-root>/netns/default` for its host's namespace; when that namespace
    also has a name of its own (ip netns, a bind mount elsewhere), that name is shown."""
    engine = tmpdir_clean / "engine-c"
    (engine / "netns").mkdir(parents=True)
    (engine / "libnetwork").mkdir()
    own = tmpdir_clean / "named" / "netns" / unique("node-")
    own.parent.mkdir(parents=True)
    own.touch()
    subprocess.run(["unshare", f"--net={own}", "true"], check=True)
    alias = engine / "netns" / "default"
    alias.touch()
    subprocess.run(["mount", "--bind", str(own), str(alias)], check=True)
    records = _ns({"NETNS_SHELL_PATH": f"{engine / 'netns'}:{own.parent}"})
    (record,) = [r for r in records if str(alias) in r["paths"]]
    assert record["name"] == own.name and record["paths"][0] == str(own), record
    assert record["kind"] == "named"
