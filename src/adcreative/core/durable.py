"""Durable, all-or-nothing folders: a model folder is either the old complete one or the new complete one.

A model is two files (``config.json`` and ``model.safetensors``) that must match; writing them one after the
other in place leaves a mixed pair if the process dies between the two. :func:`atomic_dir` builds the new
folder beside the target, fsyncs it, and swaps it in with one rename (``renameat2(RENAME_EXCHANGE)`` where Linux
has it, so even replacing an existing folder is one step), then fsyncs the parent so the rename itself survives
a power cut.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

from adcreative.core.errors import InputError

UMASK = os.umask(0)  # read once: os.umask can only be read by setting it
os.umask(UMASK)


def file_in_the_way(path: str | Path) -> Path | None:
    """``path`` or the nearest of its existing ancestors, when that is a file: nothing can be created at or under
    ``path`` then. None when the way is clear (the nearest existing one is a folder)."""
    path = Path(path)
    for p in (path, *path.parents):
        if p.exists():
            return None if p.is_dir() else p
    return None


def fsync_dir(path: str | Path) -> None:
    """Make a folder's entries (files created, renamed or removed in it) durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as e:  # some filesystems refuse fsync on a directory; there is nothing more to do then
        if e.errno not in (errno.EINVAL, errno.EBADF, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


def fsync_tree(root: str | Path) -> None:
    """fsync every file and folder under ``root`` (folders after their contents)."""
    for dirpath, _dirs, names in os.walk(root, topdown=False):
        for name in names:
            p = os.path.join(dirpath, name)
            if os.path.islink(p):
                continue
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(dirpath)


@contextlib.contextmanager
def atomic_dir(path: str | Path, *, keep_others: bool = True, drop: Iterable[str] = ()) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; when the block ends without an error, it replaces
    ``path`` in one rename. A crash at any point leaves ``path`` as it was or as the block wrote it.

    ``keep_others``: entries of an existing ``path`` that the block did not write (an ``eval/`` folder, a
    history file) are carried over as hard links, except the names in ``drop`` (files derived from the old
    contents, e.g. an ONNX export of old weights, which would no longer match)."""
    target = Path(path).absolute()
    if target.exists() and not target.is_dir():
        raise InputError("exists and is not a folder", source=target)
    cwd = Path.cwd().resolve()
    if target.exists() and (cwd == target.resolve() or target.resolve() in cwd.parents):
        raise InputError("cannot replace the current folder or one above it: save into a folder of its own",
                         source=target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        os.chmod(tmp, 0o777 & ~UMASK)  # mkdtemp makes 0700 folders; a model folder is readable like any other
        yield tmp
        if keep_others and target.is_dir():
            _carry_over(target, tmp, skip=set(drop))
        fsync_tree(tmp)
        _install(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone after a success (it held the old folder) and after errors


def _carry_over(old: Path, new: Path, *, skip: set[str]) -> None:
    for entry in old.iterdir():
        dest = new / entry.name
        if entry.name in skip or dest.exists() or dest.is_symlink():
            continue
        if entry.is_symlink():
            os.symlink(os.readlink(entry), dest)
        elif entry.is_dir():
            shutil.copytree(entry, dest, symlinks=True, copy_function=_link_or_copy)
        else:
            _link_or_copy(str(entry), str(dest))


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another filesystem mounted inside, or links not supported: copy instead
        shutil.copy2(src, dst)


def _install(tmp: Path, target: Path) -> None:
    """Put ``tmp`` at ``target``; afterwards ``tmp`` holds the old folder (or nothing)."""
    if not target.exists():
        os.rename(tmp, target)
    elif not _exchange(tmp, target):
        # no atomic exchange here: two renames. A crash between them leaves no folder at ``target``, but both
        # complete folders beside it (.NAME.*.old is the old one, .NAME.*.tmp the new): never a mixed pair.
        old = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.old"
        os.rename(target, old)
        os.rename(tmp, target)
        os.rename(old, tmp)
    fsync_dir(target.parent)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False where that is unavailable."""
    if not sys.platform.startswith("linux"):
        return False
    fn = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if fn is None:  # glibc < 2.28, musl
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EPERM):  # the filesystem cannot exchange
        return False
    raise OSError(err, os.strerror(err), str(b))
