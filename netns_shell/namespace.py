"""Network namespace handles: open safely, verify, and make sockets inside.

A `NetNamespace` holds an open file descriptor on an nsfs file, which keeps
the namespace alive for as long as the handle lives.  Nothing here ever
creates a namespace: files are opened read-only without O_CREAT and their
type is checked with the NS_GET_NSTYPE ioctl before use.

The calling thread never changes namespace.  Work that must happen inside
(creating a netlink or packet socket) runs on a short-lived thread that
enters the namespace with setns(2), does the work and exits; sockets stay
bound to the namespace they were created in, so they can be used from any
thread afterwards (architecture.md facts 1-3).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import signal
import socket
import stat
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import NamespaceError, PrivilegeError

if TYPE_CHECKING:
    from .mounts import Mount

__all__ = [
    "CLONE_NEWNET",
    "NAMESPACE_TYPES",
    "NETNS_DIRS",
    "NetNamespace",
    "c_library",
    "distinct_search_dirs",
    "namespace_type",
    "run_in_each",
    "search_dirs",
    "setns",
]

T = TypeVar("T")

CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

#: nstype -> (name used in /proc/PID/ns, human name)
NAMESPACE_TYPES = {
    CLONE_NEWNET: ("net", "network"),
    CLONE_NEWNS: ("mnt", "mount"),
    CLONE_NEWUTS: ("uts", "UTS"),
    CLONE_NEWIPC: ("ipc", "IPC"),
    CLONE_NEWPID: ("pid", "PID"),
    CLONE_NEWUSER: ("user", "user"),
    CLONE_NEWCGROUP: ("cgroup", "cgroup"),
    CLONE_NEWTIME: ("time", "time"),
}

#: Directories holding namespace files, most specific first (NETNS_SHELL_PATH adds more).
NETNS_DIRS = (
    "/var/run/docker/netns",
    "/run/docker/netns",
    "/var/run/netns",
    "/run/netns",
)

_NS_GET_NSTYPE = 0xB703  # _IO(0xb7, 0x3), Linux >= 4.11
_PF_KTHREAD = 0x00200000

_libc: ctypes.CDLL | None = None


def c_library() -> ctypes.CDLL:
    """The C library, through dlopen(NULL): no ldconfig run, unlike ctypes.util.find_library."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def setns(fd: int, nstype: int) -> None:
    """Move the calling thread into the namespace behind `fd` (setns(2))."""
    if hasattr(os, "setns"):  # Python >= 3.12
        os.setns(fd, nstype)
        return
    if c_library().setns(fd, nstype) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def search_dirs() -> list[str]:
    """The netns directories, those in NETNS_SHELL_PATH first."""
    extra = [d for d in os.environ.get("NETNS_SHELL_PATH", "").split(":") if d]
    return extra + list(NETNS_DIRS)


def distinct_search_dirs() -> Iterator[tuple[str, str]]:
    """(directory, its real path) for each netns directory once (/run and /var/run name
    the same one), in search order."""
    seen: set[str] = set()
    for directory in search_dirs():
        real = os.path.realpath(directory)
        if real not in seen:
            seen.add(real)
            yield directory, real


def namespace_type(fd: int) -> int | None:
    """The CLONE_NEW* type of the namespace file `fd`, or None if it is not nsfs."""
    try:
        return fcntl.ioctl(fd, _NS_GET_NSTYPE)
    except OSError as exc:
        if exc.errno in (errno.ENOTTY, errno.EINVAL, errno.ENOSYS):
            return None
        raise


def empty_file_reason(path: str, table: list[Mount] | None = None) -> str:
    """Why a netns file is empty (nothing is mounted on it), by where it lies: on a bind
    mount of a directory (a container's volume) the namespace mount did not propagate into
    this mount namespace; elsewhere it was left behind when its namespace went away.
    `table`: the mount table, when the caller has read it already."""
    from .mounts import mount_of

    mount = mount_of(os.path.dirname(path) or ".", table)
    if mount is not None and mount.root not in ("/", ""):
        return (
            "empty file, not a namespace: a bind mount that did not propagate into this "
            "container? mount the directory with ':rslave' propagation, e.g. "
            "-v /var/run/docker/netns:/var/run/docker/netns:rslave"
        )
    return (
        "empty file, not a namespace: nothing is mounted on it (left behind when its "
        "namespace went away, e.g. by an engine that stopped uncleanly)"
    )


def _describe_bad_file(path: str, st: os.stat_result) -> str:
    if stat.S_ISDIR(st.st_mode):
        return f"{path}: is a directory, not a network namespace file"
    if stat.S_ISREG(st.st_mode) and st.st_size == 0:
        return f"{path}: is an {empty_file_reason(path)}"
    return f"{path}: is not a namespace file"


class NetNamespace:
    """An open network namespace: a verified nsfs file descriptor.

    Create with `open_path`, `open_pid` or `current`; close with `close()` or
    use as a context manager.  `label` is the name shown to users.
    """

    __slots__ = ("__weakref__", "dev", "fd", "inode", "label", "path", "pid", "pidfd")

    def __init__(
        self,
        fd: int,
        path: str,
        *,
        pid: int | None = None,
        label: str | None = None,
        pidfd: int = -1,
    ):
        st = os.fstat(fd)
        self.fd = fd
        self.inode = st.st_ino
        self.dev = st.st_dev
        self.path = path
        self.pid = pid
        #: a pidfd on the process `pid` was when the handle was made (-1: none): PID
        #: numbers are reused, a pidfd always means that one process
        self.pidfd = pidfd
        self.label = label or path

    # ----------------------------------------------------------- opening
    @classmethod
    def open_path(cls, path: str, *, label: str | None = None) -> NetNamespace:
        """Open the network namespace file `path` (never creating anything).

        Raises NamespaceError with a one-line reason when the path is missing,
        is a directory or regular file, or names a namespace of another type.
        """
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK)
        except FileNotFoundError:
            raise NamespaceError(f"{path}: no such file") from None
        except (PermissionError, OSError) as exc:
            if exc.errno in (errno.EACCES, errno.EPERM):
                why = (
                    "refused even to root: another user namespace or a security module"
                    if os.geteuid() == 0
                    else "opening a namespace needs root"
                )
                raise PrivilegeError(f"{path}: permission denied ({why})") from None
            raise NamespaceError(f"{path}: {exc.strerror}") from None
        try:
            _verify_network_namespace(fd, path)
        except BaseException:
            os.close(fd)
            raise
        return cls(fd, path, label=label)

    @classmethod
    def open_pid(cls, pid: int, *, label: str | None = None) -> NetNamespace:
        """Open the network namespace of process `pid` (like `nsenter -t PID -n`).

        The handle keeps a pidfd on that process, so that joining its other
        namespaces later (`exec -m`) can tell when it has exited and its PID
        went to another process.
        """
        check_pid(pid)
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            raise NamespaceError(f"PID {pid}: no such process") from None
        try:
            ns = cls.open_path(f"/proc/{pid}/ns/net", label=label or f"pid:{pid}")
            ns.pid, ns.pidfd = pid, pidfd
            ns.check_process()  # the namespace opened was that process's
        except BaseException:
            os.close(pidfd)
            raise
        return ns

    def keep_holder(self, pids) -> None:
        """Remember the first of `pids` that lives in this namespace, as `open_pid` does, so
        that `exec -m/-a` can join that process's other namespaces (a container's, a pod's).
        Nothing happens when none does; a handle that has a process already keeps it."""
        if self.pid is not None:
            return
        for pid in pids:
            if type(pid) is not int or pid <= 0:
                continue
            try:
                pidfd = os.pidfd_open(pid)
            except OSError:
                continue
            try:
                st = os.stat(f"/proc/{pid}/ns/net")
                signal.pidfd_send_signal(pidfd, 0)  # the stat was that process's
            except OSError:
                os.close(pidfd)
                continue
            if (st.st_dev, st.st_ino) == (self.dev, self.inode):
                self.pid, self.pidfd = pid, pidfd
                return
            os.close(pidfd)

    def check_process(self) -> None:
        """Raise NamespaceError when the handle's process has exited (see `pidfd`)."""
        if self.pidfd < 0:
            return
        try:
            signal.pidfd_send_signal(self.pidfd, 0)
        except ProcessLookupError:
            raise NamespaceError(
                f"PID {self.pid} has exited (its number may belong to another process now)"
            ) from None

    @classmethod
    def current(cls, *, label: str = "host") -> NetNamespace:
        """Open the namespace of the calling thread (used as the 'host' handle)."""
        return cls.open_path("/proc/thread-self/ns/net", label=label)

    # ---------------------------------------------------------- lifetime
    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if self.pidfd >= 0:
            os.close(self.pidfd)
            self.pidfd = -1

    def __enter__(self) -> NetNamespace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        return f"<NetNamespace {self.label!r} inode={self.inode}>"

    def duplicate(self) -> NetNamespace:
        """An independent handle on the same namespace (its own file descriptor)."""
        if self.fd < 0:
            raise NamespaceError(f"{self.label}: namespace handle is closed")
        return NetNamespace(
            fcntl.fcntl(self.fd, fcntl.F_DUPFD_CLOEXEC, 3),
            self.path,
            pid=self.pid,
            label=self.label,
            pidfd=fcntl.fcntl(self.pidfd, fcntl.F_DUPFD_CLOEXEC, 3) if self.pidfd >= 0 else -1,
        )

    def same_as(self, other: NetNamespace) -> bool:
        return (self.inode, self.dev) == (other.inode, other.dev)

    @property
    def key(self) -> tuple[int, int]:
        """(device, inode): identifies the namespace, whatever path named it."""
        return (self.dev, self.inode)

    # -------------------------------------------------------- doing work
    def is_current_thread_namespace(self) -> bool:
        st = os.stat("/proc/thread-self/ns/net")
        return (st.st_ino, st.st_dev) == (self.inode, self.dev)

    def run(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call `func` inside this namespace and return its result.

        The call happens on a fresh thread that enters the namespace and then
        exits, so the caller's thread never switches; exceptions propagate.
        """
        if self.fd < 0:
            raise NamespaceError(f"{self.label}: namespace handle is closed")
        if self.is_current_thread_namespace():
            return func(*args, **kwargs)
        box: dict[str, Any] = {}

        def body() -> None:
            home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            try:
                setns(self.fd, CLONE_NEWNET)
            except OSError as exc:
                os.close(home)
                box["error"] = _setns_error(self.label, exc)
                return
            try:
                box["result"] = func(*args, **kwargs)
            except BaseException as exc:  # handed to the caller's thread
                box["error"] = exc
            finally:
                # come home before the thread is reported finished, so no thread of
                # this process is ever seen in another namespace once run() returns
                setns(home, CLONE_NEWNET)
                os.close(home)

        worker = threading.Thread(target=body, name=f"netns:{self.label}", daemon=True)
        worker.start()
        worker.join()
        if "error" in box:
            raise box["error"]
        return box["result"]

    def socket(self, family: int, type: int = socket.SOCK_RAW, proto: int = 0) -> socket.socket:
        """A socket created inside this namespace (it stays bound to it)."""
        return self.run(socket.socket, family, type | socket.SOCK_CLOEXEC, proto)


def _setns_error(label: str, exc: OSError) -> Exception:
    if exc.errno == errno.EPERM:
        return PrivilegeError(f"{label}: cannot enter namespace: CAP_SYS_ADMIN is missing")
    return NamespaceError(f"{label}: cannot enter namespace: {exc.strerror}")


def _verify_network_namespace(fd: int, path: str) -> None:
    st = os.fstat(fd)
    nstype = namespace_type(fd)
    if nstype is None:
        raise NamespaceError(_describe_bad_file(path, st))
    if nstype != CLONE_NEWNET:
        kind = NAMESPACE_TYPES.get(nstype, ("?", "another"))[1]
        raise NamespaceError(f"{path}: is a {kind} namespace, not a network namespace")


def check_pid(pid: int) -> None:
    """Raise NamespaceError unless `pid` is a live user-space process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read()
    except (FileNotFoundError, ProcessLookupError):
        raise NamespaceError(f"PID {pid}: no such process") from None
    except OSError as exc:
        raise NamespaceError(f"PID {pid}: {exc.strerror}") from None
    comm = raw[raw.find(b"(") + 1 : raw.rfind(b")")].decode(errors="replace")
    fields = raw[raw.rfind(b")") + 2 :].split()
    flags = int(fields[6]) if len(fields) > 6 else 0
    if fields and fields[0] == b"Z":
        raise NamespaceError(f"PID {pid} ({comm}): is a zombie; it holds no namespace")
    if flags & _PF_KTHREAD:
        raise NamespaceError(
            f"PID {pid} ({comm}): is a kernel thread; give the PID of a user-space process"
        )


def run_in_each(
    namespaces: Iterable[NetNamespace], func: Callable[[NetNamespace], T]
) -> Iterator[tuple[NetNamespace, T | BaseException]]:
    """Call `func(ns)` inside each namespace in turn, on one worker thread.

    Cheaper than `NetNamespace.run` per namespace when visiting hundreds: one
    thread hops from namespace to namespace and returns home when done.
    Yields (namespace, result or the exception it raised), in order.
    """
    results: list[tuple[NetNamespace, T | BaseException]] = []

    def body() -> None:
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            for ns in namespaces:
                try:
                    setns(ns.fd, CLONE_NEWNET)
                except OSError as exc:
                    results.append((ns, _setns_error(ns.label, exc)))
                    continue
                try:
                    results.append((ns, func(ns)))
                except Exception as exc:
                    results.append((ns, exc))
        finally:
            setns(home, CLONE_NEWNET)
            os.close(home)

    worker = threading.Thread(target=body, name="netns:each", daemon=True)
    worker.start()
    worker.join()
    yield from results
