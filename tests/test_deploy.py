"""The deployment files, checked without a cluster or an engine.

The Kubernetes manifest is validated against the Kubernetes JSON schemas that the
kubernetes-validate package bundles (offline), and its fields that matter for netns-shell are
checked with PyYAML: a schema accepts a DaemonSet that could not enter a single namespace.
The image build helpers and the build context are checked against pyproject.toml.
"""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

MANIFEST = ROOT / "deploy/kubernetes/netns-shell-daemonset.yaml"
NETNS_DIRS = ("/var/run/netns", "/var/run/docker/netns")
SCRIPTS = ("deploy/build-base-image", "deploy/build-image")
# the oldest Kubernetes the manifest is meant for, and whatever kubernetes-validate knows last
SCHEMA_VERSIONS = ("1.27.0", "latest")


def _documents() -> list[dict]:
    with open(MANIFEST, encoding="utf-8") as fh:
        return [doc for doc in yaml.safe_load_all(fh) if doc]


def _daemonset() -> dict:
    (daemonset,) = [d for d in _documents() if d["kind"] == "DaemonSet"]
    return daemonset


def _container(daemonset: dict) -> dict:
    (container,) = daemonset["spec"]["template"]["spec"]["containers"]
    return container


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
def test_manifest_matches_the_kubernetes_schemas(version):
    validator = pytest.importorskip(
        "kubernetes_validate", reason="kubernetes-validate is not installed (test extras)"
    )
    version = validator.latest_version() if version == "latest" else version
    for doc in _documents():
        try:
            validator.validate(doc, version, strict=True)  # strict: unknown fields are errors
        except validator.ValidationError as exc:
            pytest.fail(f"{doc['kind']} {doc['metadata']['name']} against {version}: {exc}")


def test_manifest_has_a_namespace_and_a_daemonset_that_selects_its_pods():
    kinds = {(d["apiVersion"], d["kind"]) for d in _documents()}
    assert kinds == {("v1", "Namespace"), ("apps/v1", "DaemonSet")}
    (namespace,) = [d for d in _documents() if d["kind"] == "Namespace"]
    daemonset = _daemonset()
    assert daemonset["metadata"]["namespace"] == namespace["metadata"]["name"]
    # Pod Security Admission would refuse a privileged, host-namespace pod elsewhere
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    selector = daemonset["spec"]["selector"]["matchLabels"]
    labels = daemonset["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items()


def test_pods_share_the_nodes_network_and_pids_and_run_everywhere():
    pod = _daemonset()["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True
    assert pod["hostPID"] is True
    assert pod["dnsPolicy"] == "ClusterFirstWithHostNet"  # cluster DNS despite hostNetwork
    assert pod["automountServiceAccountToken"] is False  # netns-shell never calls the API
    # a toleration with no key and operator Exists tolerates every taint (any effect)
    assert {"operator": "Exists"} in pod["tolerations"]


def test_the_container_is_privileged_kept_alive_and_bounded():
    container = _container(_daemonset())
    assert container["securityContext"]["privileged"] is True  # setns, /proc/PID/ns
    assert "netns-shell" in container["image"]
    assert container["command"] == ["sleep", "infinity"]  # netns-shell runs via kubectl exec
    assert "args" not in container
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= container["resources"][kind].keys()


def test_both_namespace_directories_come_from_the_host_with_host_to_container_propagation():
    daemonset = _daemonset()
    volumes = {v["name"]: v for v in daemonset["spec"]["template"]["spec"]["volumes"]}
    mounts = {m["mountPath"]: m for m in _container(daemonset)["volumeMounts"]}
    for directory in NETNS_DIRS:
        mount = mounts[directory]
        # without it, namespaces made after the pod started are empty files (setns: EINVAL)
        assert mount["mountPropagation"] == "HostToContainer"
        assert mount.get("readOnly") is True
        assert volumes[mount["name"]]["hostPath"]["path"] == directory


def test_the_cri_socket_comes_from_the_host_where_netns_shell_looks_for_it():
    from netns_shell.cri import DEFAULT_ENDPOINTS

    daemonset = _daemonset()
    volumes = {v["name"]: v for v in daemonset["spec"]["template"]["spec"]["volumes"]}
    mounts = {m["mountPath"]: m for m in _container(daemonset)["volumeMounts"]}
    mount = mounts[DEFAULT_ENDPOINTS[0]]
    assert volumes[mount["name"]]["hostPath"] == {"path": DEFAULT_ENDPOINTS[0], "type": "Socket"}


def test_kubernetes_readme_gives_the_kubectl_debug_recipe_with_paths_that_resolve():
    text = (ROOT / "deploy/kubernetes/README.md").read_text(encoding="utf-8")
    assert "kubectl debug node/" in text and "--profile=sysadmin" in text
    # /host/var/run/... would follow the node's absolute /var/run -> /run symlink into the
    # container's own /run: the recipe must name /host/run (tested live in test_image.py)
    assert "NETNS_SHELL_PATH=/host/run/netns:/host/run/docker/netns" in text
    assert "kubectl apply -f deploy/kubernetes/netns-shell-daemonset.yaml" in text


@pytest.mark.parametrize("script", SCRIPTS)
def test_build_scripts_parse_and_explain_themselves(script):
    path = ROOT / script
    assert path.stat().st_mode & 0o111, f"{script} is not executable"
    subprocess.run(["bash", "-n", str(path)], check=True)
    usage = subprocess.run([str(path), "--help"], capture_output=True, text=True, check=True)
    assert f"{script} [" in usage.stdout


def test_build_context_lets_in_everything_the_package_build_needs():
    """The .dockerignore is an allow-list: a new top-level package dir must be added there."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    setuptools = pyproject["tool"]["setuptools"]
    needed = {"pyproject.toml", pyproject["project"]["readme"]}
    needed |= {p.split(".")[0] for p in setuptools["packages"]}
    needed -= set(setuptools.get("package-dir", {}).keys())
    needed |= {Path(d).parts[0] for d in setuptools.get("package-dir", {}).values()}
    needed = {n for n in needed if (ROOT / n).exists()}
    allowed = {
        line[1:].rstrip("/")
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.startswith("!")
    }
    assert needed <= allowed, f"add to .dockerignore: {sorted(needed - allowed)}"
