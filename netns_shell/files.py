"""Files the shell writes, opened so that nobody else can choose what they are.

netns-shell runs as root, often with HOME or the current directory belonging
to someone else (sudo, a shared /tmp).  A symlink planted where the shell
writes would make root truncate the file it points to.  So:

* an output file the user names (`capture -w FILE`, `> FILE`) is created
  with O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600; an existing one is reused only
  when it is a regular file with one link, or a FIFO; a symlink (also one
  owned by another user in a directory on the way), a device or a terminal
  is refused with one line;
* the state directory (history, debug log) is created 0700 and used only
  when every directory on its path belongs to root or to us and nobody else
  can write to it; files in it are opened relative to it, without following
  symlinks, created 0600.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass

from .errors import NetnsShellError, UsageError

__all__ = [
    "PrivateDir",
    "UnsafePathError",
    "check_trusted_directory",
    "open_output",
    "state_dir",
]

_OUTPUT_FLAGS = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY
_MAX_LINKS = 40
_NULL_DEVICE = os.makedev(1, 3)


class UnsafePathError(NetnsShellError):
    """A path that someone other than root or us could redirect."""


def _describe(st: os.stat_result) -> str:
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _trusted_owner(uid: int) -> bool:
    return uid in (0, os.geteuid())


def check_trusted_directory(path: str, *, writable_by_others_ok: bool = True) -> None:
    """Raise UnsafePathError unless nobody but root and us can redirect `path`.

    Every symlink on the way must belong to root or to us (so /var/run -> /run
    is fine, a user's ~/x -> /etc is not).  With `writable_by_others_ok`
    False, every directory must also belong to root or us and not be writable
    by others (sticky directories such as /tmp excepted, for their entries'
    owners are checked in turn).
    """
    todo = [part for part in os.path.abspath(path).split("/") if part]
    done = "/"
    hops = 0
    while todo:
        part = todo.pop(0)
        here = os.path.join(done, part)
        try:
            st = os.lstat(here)
        except FileNotFoundError:
            return  # the rest will be created by us
        if stat.S_ISLNK(st.st_mode):
            if not _trusted_owner(st.st_uid):
                raise UnsafePathError(
                    f"{path}: {here} is a symbolic link owned by uid {st.st_uid}: "
                    "refusing to follow it (give the real path)"
                )
            hops += 1
            if hops > _MAX_LINKS:
                raise UnsafePathError(f"{path}: too many levels of symbolic links")
            target = os.readlink(here)
            base = "/" if target.startswith("/") else done
            todo = [p for p in os.path.join(base, target).split("/") if p] + todo
            done = "/"
            continue
        if not writable_by_others_ok and stat.S_ISDIR(st.st_mode):
            sticky = st.st_mode & stat.S_ISVTX
            if not _trusted_owner(st.st_uid):
                raise UnsafePathError(f"{path}: {here} belongs to uid {st.st_uid}")
            if st.st_mode & 0o022 and not sticky:
                raise UnsafePathError(f"{path}: {here} is writable by other users")
        done = here


def open_output(path: str, *, what: str = "output file", append: bool = False) -> int:
    """A file descriptor to write `path` to, created 0600 or safely reused (see above).

    An existing regular file is truncated, or with `append` written at its end
    (`>> FILE`).  Raises UsageError (one line) for what must not be written to.
    """
    try:
        check_trusted_directory(os.path.dirname(os.path.abspath(path)))
    except UnsafePathError as exc:
        raise UsageError(f"{what} {exc}") from None
    try:
        mode = os.O_APPEND if append else 0
        return os.open(path, os.O_RDWR | mode | _OUTPUT_FLAGS | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    except OSError as exc:
        raise _open_error(path, what, exc) from None
    try:  # look first (a FIFO opens at once for reading), then reopen what was looked at
        probe = os.open(path, os.O_RDONLY | _OUTPUT_FLAGS | os.O_NONBLOCK)
    except OSError as exc:
        raise _open_error(path, what, exc) from None
    try:
        st = os.fstat(probe)
        if stat.S_ISFIFO(st.st_mode):  # a named pipe: wait for its reader, like tee
            return os.open(f"/proc/self/fd/{probe}", os.O_WRONLY | os.O_CLOEXEC)
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == _NULL_DEVICE:  # discarding is harmless
            return os.open(f"/proc/self/fd/{probe}", os.O_WRONLY | os.O_CLOEXEC)
        if os.isatty(probe):
            raise UsageError(f"{what} {path}: is a terminal: refusing to write binary data to it")
        if not stat.S_ISREG(st.st_mode):
            raise UsageError(f"{what} {path}: is {_describe(st)}: refusing to write to it")
        if st.st_nlink != 1:
            raise UsageError(
                f"{what} {path}: has {st.st_nlink} hard links: refusing to overwrite it"
            )
        if append:
            return os.open(f"/proc/self/fd/{probe}", os.O_RDWR | os.O_APPEND | os.O_CLOEXEC)
        fd = os.open(f"/proc/self/fd/{probe}", os.O_RDWR | os.O_CLOEXEC)
        os.ftruncate(fd, 0)
        return fd
    finally:
        os.close(probe)


def _open_error(path: str, what: str, exc: OSError) -> NetnsShellError:
    if exc.errno == errno.ELOOP:
        return UsageError(
            f"{what} {path}: is a symbolic link: refusing to follow it (give the real path)"
        )
    return NetnsShellError(f"cannot write {path}: {exc.strerror}")


def state_dir() -> str:
    """Where history and the debug log live: $XDG_STATE_HOME/netns-shell or ~/.local/state/..."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return os.path.join(base, "netns-shell")


@dataclass
class PrivateDir:
    """A directory only we (and root) control, held open; files inside are opened relative to it."""

    path: str
    fd: int

    @classmethod
    def open(cls, path: str | None = None) -> PrivateDir:
        """Create (0700) or open the directory; UnsafePathError when it is not private."""
        path = path or state_dir()
        check_trusted_directory(path, writable_by_others_ok=False)
        os.makedirs(path, mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        st = os.fstat(fd)
        if st.st_uid != os.geteuid() or st.st_mode & 0o077:
            os.close(fd)
            raise UnsafePathError(
                f"{path}: must belong to uid {os.geteuid()} with mode 0700 "
                f"(it is uid {st.st_uid}, mode {stat.S_IMODE(st.st_mode):04o})"
            )
        return cls(path, fd)

    def open_file(self, name: str, flags: int) -> int:
        """Open `name` inside, never following a symlink; created 0600; a regular file only."""
        fd = os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=self.fd)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
            os.close(fd)
            raise UnsafePathError(f"{os.path.join(self.path, name)}: not a regular file of ours")
        return fd

    def append(self, name: str, data: bytes) -> None:
        fd = self.open_file(name, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    def read(self, name: str) -> bytes:
        """The file's contents (b'' when it does not exist)."""
        try:
            fd = self.open_file(name, os.O_RDONLY)
        except FileNotFoundError:
            return b""
        with os.fdopen(fd, "rb") as fh:
            return fh.read()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
