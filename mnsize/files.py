"""Every file mnsize writes goes through here: checked before any work,
written atomically, never over one of the run's own inputs.

A write goes to a temporary file in the destination's folder, is flushed and
fsynced, then renamed over the destination (``os.replace``, atomic on POSIX
and Windows): a reader sees the old file or the new one, never a part of
either, and a full disk or a killed process leaves the old file intact. On
Linux the temporary file has no name until it is complete (``O_TMPFILE``), so
even a process killed while writing leaves nothing behind in the folder. A
destination that is a symbolic link is written through: the link's target is
replaced and the link kept.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable, Iterable

from .bounds import MAX_APPEND_BASE_BYTES
from .errors import MnsizeError
_NAME_TRIES = 100


def _target(path: str) -> str:
    """The file a write to ``path`` really replaces (a link's target)."""
    return os.path.realpath(path)


def _reason(exc: OSError) -> str:
    return exc.strerror or exc.__class__.__name__


def _not_a_file(path: str, mode: int) -> MnsizeError | None:
    """The refusal for anything at ``path`` that is not a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        kind = "a folder"
    elif stat.S_ISFIFO(mode):
        kind = "a FIFO (named pipe)"
    elif stat.S_ISSOCK(mode):
        kind = "a socket"
    else:
        kind = "a device"
    return MnsizeError(f"{path}: is {kind}, not a file; mnsize writes only regular files")


def _existing(path: str, target: str) -> os.stat_result | None:
    """What is at ``target`` now (None when nothing is), refusing anything but
    a regular file: os.replace would put a file in place of a device, as root
    even /dev/full."""
    try:
        info = os.stat(target)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise MnsizeError(f"{path}: cannot write: {_reason(exc)}") from None
    refusal = _not_a_file(path, info.st_mode)
    if refusal is not None:
        raise refusal
    return info


def check_destination(path: str, *, inputs: Iterable[str] = (), outputs: Iterable[str] = (),
                      what: str = "output") -> None:
    """Refuse, before any work is done, a destination that cannot be written
    or must not be: a folder, a device or FIFO, a file in a missing or
    read-only folder, a read-only file, one of the run's ``inputs``, or the
    same file as one of its other ``outputs``. Nothing is opened: a FIFO
    cannot block the check."""
    target = _target(path)
    for source in inputs:
        if source is not None and same_file(path, source):
            raise MnsizeError(f"{path}: the {what} would overwrite {source}, an input of this run; "
                              "give another file name")
    for other in outputs:
        if other is not None and same_file(path, other):
            raise MnsizeError(f"{path}: given as two outputs of this run ({other}); give each its own file")
    info = _existing(path, target)
    if info is not None:
        # by its mode bits too: root may write anything, but a file nobody may
        # write is one its owner meant to keep
        if not info.st_mode & 0o222 or not os.access(target, os.W_OK):
            raise MnsizeError(f"{path}: cannot write: the file is read-only")
    folder = os.path.dirname(target)
    if not os.path.isdir(folder):
        raise MnsizeError(f"{path}: cannot write: no such folder {folder}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise MnsizeError(f"{path}: cannot write: the folder {folder} is read-only")


def same_file(a: str, b: str) -> bool:
    """Whether two paths name one file (through links, '..' and hard links)."""
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return _target(a) == _target(b)


_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_BINARY = getattr(os, "O_BINARY", 0)  # Windows


def _open_unnamed(folder: str) -> int | None:
    """A new file with no name yet in ``folder`` (Linux's O_TMPFILE), or None
    where the platform or the file system has no such files."""
    flag = getattr(os, "O_TMPFILE", 0)
    if not flag or not os.path.isdir("/proc/self/fd"):
        return None
    try:
        return os.open(folder, flag | os.O_RDWR | _CLOEXEC, 0o666)
    except OSError:
        return None


def _fresh_name(folder: str, name: str) -> str:
    return os.path.join(folder, f".{name}.{os.urandom(4).hex()}.tmp")


def _create_named(folder: str, name: str) -> tuple[int, str]:
    for _ in range(_NAME_TRIES):
        temporary = _fresh_name(folder, name)
        try:
            return os.open(temporary, os.O_RDWR | os.O_CREAT | os.O_EXCL | _CLOEXEC | _BINARY, 0o666), temporary
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name next to {name}")


def _link_unnamed(fd: int, folder: str, name: str) -> str:
    """Give the finished unnamed file a temporary name in its folder."""
    folder_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)
    try:
        for _ in range(_NAME_TRIES):
            temporary = _fresh_name(folder, name)
            try:
                # linkat with AT_SYMLINK_FOLLOW (which a folder descriptor selects): the file, not the /proc link
                os.link(f"/proc/self/fd/{fd}", os.path.basename(temporary), dst_dir_fd=folder_fd,
                        follow_symlinks=True)
                return temporary
            except FileExistsError:
                continue
    finally:
        os.close(folder_fd)
    raise FileExistsError(f"no free temporary name next to {name}")


def _keep_owner_and_mode(fd: int, temporary: str | None, old: os.stat_result) -> None:
    if temporary is None:
        os.fchmod(fd, stat.S_IMODE(old.st_mode))
    else:
        os.chmod(temporary, stat.S_IMODE(old.st_mode))
    if hasattr(os, "fchown") and (old.st_uid, old.st_gid) != (os.geteuid(), os.getegid()):
        with contextlib.suppress(OSError):  # only root may give a file away
            os.fchown(fd, old.st_uid, old.st_gid)


def _sync_folder(folder: str) -> None:
    """Put the rename itself on disk (not every platform or file system can)."""
    with contextlib.suppress(OSError, AttributeError):
        folder_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)
        try:
            os.fsync(folder_fd)
        finally:
            os.close(folder_fd)


def replace_atomically(path: str, write: Callable[[str], None]) -> None:
    """Have ``write(temporary_path)`` write the whole file, then move it over
    ``path`` in one step. The temporary path need not end as ``path`` does
    (a writer that picks a format by the extension must be told the format).
    An existing file's permission bits are kept. On any failure ``path`` is
    as it was and the temporary file is gone; the failure is one MnsizeError
    naming ``path``."""
    target = _target(path)
    folder, name = os.path.split(target)
    old = _existing(path, target)
    fd, named = None, None
    try:
        fd = _open_unnamed(folder)
        if fd is None:
            fd, named = _create_named(folder, name)
            working = named
        else:
            working = f"/proc/self/fd/{fd}"
        write(working)
        os.fsync(fd)
        if old is not None:
            _keep_owner_and_mode(fd, named, old)
        if named is None:
            named = _link_unnamed(fd, folder, name)
        os.close(fd)  # Windows renames no file that is open
        fd = None
        os.replace(named, target)
        named = None
        _sync_folder(folder)
    except OSError as exc:
        raise MnsizeError(f"{path}: cannot write: {_reason(exc)}") from None
    finally:
        if fd is not None:
            os.close(fd)
        if named is not None:
            with contextlib.suppress(OSError):
                os.unlink(named)


def write_atomic(path: str, data: str | bytes) -> None:
    """Replace ``path`` with ``data`` (text is written as UTF-8), atomically."""
    payload = data.encode("utf-8") if isinstance(data, str) else data

    def write(temporary: str) -> None:
        with open(temporary, "wb") as file:
            file.write(payload)

    replace_atomically(path, write)


def append_atomic(path: str, data: str) -> None:
    """Add ``data`` at the end of a text file (creating it), atomically: the
    file holds its old text or old text plus ``data``, never a part of it.
    (The file is rewritten whole: two processes appending at once may lose
    one's text, never mix them.)"""
    target = _target(path)
    try:
        fd = os.open(target, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | _CLOEXEC)  # a FIFO must not block the open
    except FileNotFoundError:
        old = b""
    except OSError as exc:
        raise MnsizeError(f"{path}: cannot read: {_reason(exc)}") from None
    else:
        refusal = _not_a_file(path, os.fstat(fd).st_mode)
        if refusal is not None:
            os.close(fd)
            raise refusal
        with os.fdopen(fd, "rb") as file:
            try:
                old = file.read(MAX_APPEND_BASE_BYTES + 1)
            except OSError as exc:
                raise MnsizeError(f"{path}: cannot read: {_reason(exc)}") from None
        if len(old) > MAX_APPEND_BASE_BYTES:
            raise MnsizeError(f"{path}: larger than {MAX_APPEND_BASE_BYTES:,} bytes; not appending to it")
    write_atomic(path, old + data.encode("utf-8"))
