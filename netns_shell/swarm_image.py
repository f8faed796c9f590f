"""A small image that carries netns-shell, for the swarm lab's nodes (no registry, no build).

`check --via container|service` runs a one-shot netns-shell on each node, so each node's
engine needs an image of the product.  The product image (Dockerfile) needs a Debian base
made with debootstrap (minutes); the lab needs one in seconds.  This one is a root
filesystem imported with `docker import`: this host's Debian python3.11 (the binary, the
shared libraries `ldd` names for it and for its extension modules, the standard library
without its tests and tools), netns-shell's own source (with `plugins/` as
`netns_shell.builtin_plugins`) and its pure-Python dependencies, taken from where this
interpreter imports them.  About 30 MB; the tar is cached by the hash of its content in
CACHE_DIR, and the image is tagged with that hash, so a node loads it once per source.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import subprocess
import tarfile
import tempfile

__all__ = ["AGENT_REPOSITORY", "CACHE_DIR", "agent_rootfs", "import_changes"]

AGENT_REPOSITORY = "netns-shell-agent"
CACHE_DIR = "/var/cache/netns-shell"
PYTHON = "/usr/bin/python3.11"
STDLIB = "/usr/lib/python3.11"
LIB = "/opt/netns-shell/lib"
_SKIP_STDLIB = {
    "test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "pydoc_data",
    "config-3.11-x86_64-linux-gnu", "site-packages", "dist-packages", "unittest",
}  # fmt: skip
#: what `python -m netns_shell -c 'check --collect'` imports, besides the standard library
_DEPENDENCIES = ("pyroute2", "prompt_toolkit", "tabulate", "wcwidth")


def import_changes() -> list[str]:
    """`docker import --change` instructions: the entrypoint and where the package lies."""
    return [
        f"ENV PYTHONPATH={LIB}",
        "ENV LANG=C.UTF-8",
        f'ENTRYPOINT ["{PYTHON}", "-m", "netns_shell"]',
    ]


def agent_rootfs(cache_dir: str = CACHE_DIR) -> tuple[str, str]:
    """(path of the cached rootfs tar, image tag `netns-shell-agent:<hash>`); builds it once."""
    if not os.path.exists(PYTHON):
        raise FileNotFoundError(f"{PYTHON} (Debian's python3.11) is needed for the agent image")
    files = _files()
    digest = hashlib.sha256()
    for arcname, source in sorted(files.items()):
        digest.update(arcname.encode() + b"\0")
        if source is not None and not os.path.islink(source):
            st = os.stat(source)
            digest.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
            if arcname.startswith(LIB.lstrip("/") + "/netns_shell/"):
                with open(source, "rb") as f:  # the source under work: its bytes, not mtime
                    digest.update(f.read())
    for change in import_changes():
        digest.update(change.encode())
    tag = digest.hexdigest()[:16]
    os.makedirs(cache_dir, mode=0o700, exist_ok=True)
    path = os.path.join(cache_dir, f"agent-{tag}.tar")
    if not os.path.exists(path):
        fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".tmp")
        os.close(fd)
        try:
            with tarfile.open(tmp, "w") as tar:
                for arcname, source in sorted(files.items()):
                    if source is None:
                        info = tarfile.TarInfo(arcname)
                        info.type, info.mode = tarfile.DIRTYPE, 0o1777
                        tar.addfile(info)
                    else:
                        tar.add(source, arcname=arcname, recursive=False)
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        _prune(cache_dir, keep=path)
    return path, f"{AGENT_REPOSITORY}:{tag}"


def _files() -> dict[str, str | None]:
    """arcname -> source file (dereferenced), None for an empty directory."""
    files: dict[str, str | None] = {"tmp": None}
    files[PYTHON.lstrip("/")] = PYTHON
    binaries = [PYTHON]
    for root, dirs, names in os.walk(STDLIB):
        if root == STDLIB:
            dirs[:] = [d for d in dirs if d not in _SKIP_STDLIB]
        for name in names:
            source = os.path.join(root, name)
            files[source.lstrip("/")] = os.path.realpath(source)
            if name.endswith(".so"):
                binaries.append(source)
    for library in _libraries(binaries):
        files[library.lstrip("/")] = os.path.realpath(library)
    package = os.path.dirname(_origin("netns_shell"))
    _add_tree(files, package, f"{LIB}/netns_shell")
    plugins = os.path.join(os.path.dirname(package), "plugins")
    if os.path.isdir(plugins):  # a source tree: plugins/ ships as netns_shell.builtin_plugins
        _add_tree(files, plugins, f"{LIB}/netns_shell/builtin_plugins")
    for name in _DEPENDENCIES:
        origin = _origin(name)
        if os.path.basename(origin) == "__init__.py":
            _add_tree(files, os.path.dirname(origin), f"{LIB}/{name}")
        else:
            files[f"{LIB}/{os.path.basename(origin)}".lstrip("/")] = origin
    return files


def _origin(module: str) -> str:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"{module} is not importable here")
    return spec.origin


def _add_tree(files: dict[str, str | None], top: str, target: str) -> None:
    for root, dirs, names in os.walk(top):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in names:
            if name.endswith((".pyc", ".pyo")):
                continue
            source = os.path.join(root, name)
            arcname = os.path.join(target, os.path.relpath(source, top)).lstrip("/")
            files[arcname] = os.path.realpath(source)


def _libraries(binaries: list[str]) -> set[str]:
    """The shared libraries (as ldd names them, loader included) of `binaries`."""
    found: set[str] = set()
    proc = subprocess.run(["ldd", *binaries], capture_output=True, text=True, check=False)
    for line in proc.stdout.splitlines():
        parts = line.split()
        for part in parts:
            if part.startswith("/") and os.path.exists(part) and part not in binaries:
                found.add(part)
    return found


def _prune(cache_dir: str, keep: str) -> None:
    """Keep the three newest agent tars (a tar per source version otherwise piles up)."""
    tars = sorted(
        (os.path.join(cache_dir, n) for n in os.listdir(cache_dir) if n.startswith("agent-")),
        key=os.path.getmtime,
        reverse=True,
    )
    for old in tars[3:]:
        if old != keep:
            with contextlib.suppress(OSError):
                os.unlink(old)
