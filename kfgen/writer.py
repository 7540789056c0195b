"""Writing the output folder: never half-written, never two writers, never outside --out.

A render is written into a temporary sibling of --out and swapped in with one atomic
renameat2(RENAME_EXCHANGE) (two renames where the kernel lacks it). The old tree, now at that sibling's
name, is marked and locked as kfgen's to remove (`Retired`): removed there and then, or by a detached
process once kfgen has answered (unlinking 25,000 files takes half a second). A leftover (a removal
killed half-way) is removed by the next render, never while its lock is held.
A lock on the folder that holds --out serializes renders (flock on the directory itself, so no
lock file is left in your repository). kfgen owns --out, and proves it by content: provenance.json
lists every file kfgen wrote, and a render refuses a folder holding any other file, or a folder
that holds, equals or sits inside one of its inputs.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import stat
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from kfgen.digests import scan
from kfgen.errors import InputError, KfgenError
from kfgen.vocabulary import PROVENANCE

if TYPE_CHECKING:
    from kfgen.record import PreviousTree, Record

MARKER = PROVENANCE
LOCK_WAIT_SECONDS = 600
MAX_PROVENANCE_BYTES = 64 * 1024 * 1024
STAGING_MARK = ".kfgen-staging"  # in a folder kfgen made beside the output: a staging folder until it is swapped in, or a retired tree
_RENAME_EXCHANGE = 2


class OutputError(KfgenError):
    """The output folder cannot be written: exit 2 when it is the chosen folder (read-only, no
    permission), 3 when the machine fails (a full disk, an I/O error)."""

    def __init__(self, out: Path, exc: OSError):
        machine = exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO)
        self.exit_code = 3 if machine else 2
        super().__init__(f"{out}: cannot write the render: {exc.strerror or exc}; the previous output is unchanged")


class BusyError(KfgenError):
    """Another render holds the output folder's lock for too long."""

    exit_code = 3


@contextmanager
def locked(out: Path, wait_seconds: float = LOCK_WAIT_SECONDS) -> Iterator[None]:
    """Hold the lock of the folder that holds `out`; wait (saying so once) while another render holds it."""
    for folder in (out.parent, *out.parent.parents):
        if folder.exists() and not folder.is_dir():
            raise InputError(f"{out}: {folder} is a file, not a folder; choose another output folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(out.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        deadline = time.monotonic() + wait_seconds
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise BusyError(f"{out}: another kfgen render still holds its folder's lock after {wait_seconds:.0f}s") from None
                if not told:
                    print(f"kfgen: waiting for another render of {out} to finish", file=sys.stderr)
                    told = True
                time.sleep(0.1)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def check_owned(out: Path, home: Path, inputs: list[Path]) -> tuple[dict[str, os.stat_result], Record | None]:
    """Refuse an output folder that would equal or hold `home` (the stack's folder) or an input
    (a file or folder the render reads, the repository's .git), or sit inside an input; and a
    non-empty folder whose files kfgen cannot prove it wrote (each listed in its provenance.json).
    Returns what the folder holds (kfgen.digests.scan) and its sealed record, if it has one."""
    if out.is_symlink():
        raise InputError(f"{out}: is a symlink; give the real folder as --out")
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    real = out.resolve()
    for source in [home, *inputs]:
        if real == source or source.is_relative_to(real):
            raise InputError(f"{out}: would replace {source}, an input of this render; choose an output folder "
                             "inside the stack's folder that holds none of its inputs (e.g. deploy)")
        if source != home and real.is_relative_to(source):
            raise InputError(f"{out}: is inside {source}, an input of this render; choose an output folder outside it")
    return check_written_by_kfgen(out) if out.is_dir() else ({}, None)


def check_written_by_kfgen(out: Path) -> tuple[dict[str, os.stat_result], Record | None]:
    """Refuse a folder holding a .git, or any file its provenance.json does not list; returns what it
    holds (an empty folder needs no record) and its record when sealed."""
    from kfgen.record import read_record

    found = scan(out)
    if not found:
        return found, None
    for relative in found:
        if relative.rpartition("/")[2] == ".git":
            raise InputError(f"{out}: holds a .git ({out / relative}); kfgen never replaces a repository")
    record = read_record(out)
    written = record.files if record else _written_files(out)
    strangers = [relative for relative in found if relative != MARKER and relative not in written]
    if strangers:
        shown = ", ".join(sorted(strangers)[:3]) + (f" and {len(strangers) - 3} more" if len(strangers) > 3 else "")
        raise InputError(f"{out}: holds files kfgen did not write ({shown}); a render would delete them: "
                         "move them out of the folder, or choose another output folder")
    return found, record


def _written_files(out: Path) -> set[str]:
    """The files kfgen's provenance.json in `out` says it wrote (InputError when there is no such record)."""
    marker = out / MARKER
    record = None
    if marker.is_file() and not marker.is_symlink() and marker.stat().st_size <= MAX_PROVENANCE_BYTES:
        try:
            record = json.loads(marker.read_bytes())
        except ValueError:
            record = None
    if not isinstance(record, dict):
        raise InputError(f"{out}: not empty and not created by kfgen (no readable {MARKER}); choose an empty or new folder")
    files = record.get("files")
    if record.get("generator") != "kfgen" or not isinstance(files, dict):
        raise InputError(f"{out}: its {MARKER} does not list the files kfgen wrote (an older kfgen, or not kfgen): "
                         "delete the folder (it is generated) and render again")
    return set(files)


def new_staging(out: Path) -> Path:
    """A fresh temporary sibling of `out`, marked as kfgen's; leftovers of interrupted renders are
    removed first, but only those kfgen can prove are its own (its mark, or a tree its provenance covers)."""
    for stale in out.parent.glob(f".{out.name}.kfgen-*"):
        # the lock first: a tree its remover is deleting changes under any other look
        if stale.is_dir() and not stale.is_symlink() and not _being_removed(stale) and _left_by_kfgen(stale):
            shutil.rmtree(stale, ignore_errors=True)
    staging = out.parent / f".{out.name}.kfgen-new-{_unique()}"
    staging.mkdir(parents=True)
    (staging / STAGING_MARK).write_text(f"kfgen staging of {out.name}\n")
    return staging


def _unique() -> str:
    """A name part no other folder beside the output has: the previous tree may still be on its way out
    under the name of this process's last staging folder."""
    return f"{os.getpid()}-{secrets.token_hex(4)}"


def _left_by_kfgen(folder: Path) -> bool:
    """A staging folder (marked) or a previous tree on its way out (every file listed in its provenance)."""
    if (folder / STAGING_MARK).is_file():
        return True
    try:
        check_written_by_kfgen(folder)
    except (InputError, OSError):
        return False
    return True


def _being_removed(folder: Path) -> bool:
    """Whether a retired tree's lock is held: the process removing it is still at work."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return True  # gone already, or not ours to open
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


class TreeOutput:
    """Files of a new tree, written into its staging folder (a fresh folder kfgen made: it holds no
    symlinks). A file whose bytes the previous tree already holds, proven by its digest, is hard-linked
    from there instead of written (about 5x cheaper; the previous tree is never changed).
    `files`: path -> digest of everything put, for the record. Files go in folder by folder (each
    folder opened once, not resolved again for every file); `close()` when done."""

    _FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)

    def __init__(self, root: Path, previous: PreviousTree | None = None):
        self.root = root
        self.previous = previous
        self.files: dict[str, str] = {}
        self.stamps: dict[str, tuple[int, int, int]] = {}  # path -> (inode, size, mtime) as kfgen left it
        self._folder: str | None = None
        self._fds: tuple[int, int | None] = (-1, None)  # the current folder in the new tree, and in the previous one

    def put(self, relative: str, text: str, digest: str | None = None) -> str:
        """Write `text` (or link the previous tree's identical file); returns its digest."""
        data = text.encode()
        digest = digest or "sha256:" + hashlib.sha256(data).hexdigest()
        name = self._enter(relative)
        if not (self.previous and self._link(relative, name, digest)):
            fd = os.open(name, self._FLAGS, 0o666, dir_fd=self._fds[0])
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                info = os.fstat(fd)
            finally:
                os.close(fd)
            self.stamps[relative] = (info.st_ino, info.st_size, info.st_mtime_ns)
        self.files[relative] = digest
        return digest

    def reuse(self, relative: str, digest: str) -> bool:
        """Link the previous tree's file when it still holds `digest`; False when it does not."""
        if self.previous is None or not self._link(relative, self._enter(relative), digest):
            return False
        self.files[relative] = digest
        return True

    def close(self) -> None:
        for fd in self._fds:
            if fd is not None and fd >= 0:
                os.close(fd)
        self._folder, self._fds = None, (-1, None)

    def _link(self, relative: str, name: str, digest: str) -> bool:
        assert self.previous is not None
        source = self.previous.holding(relative, digest)
        if source is None or self._fds[1] is None:
            return False
        try:
            os.link(name, name, src_dir_fd=self._fds[1], dst_dir_fd=self._fds[0], follow_symlinks=False)
        except OSError:
            return False  # another file system, a limit on links: write it instead
        info, was = os.stat(name, dir_fd=self._fds[0], follow_symlinks=False), source[1]
        if not stat.S_ISREG(info.st_mode) or (info.st_ino, info.st_size, info.st_mtime_ns) != (was.st_ino, was.st_size, was.st_mtime_ns):
            raise InputError(f"{self.previous.out}: {relative} changed while kfgen read it; render again")
        self.stamps[relative] = (info.st_ino, info.st_size, info.st_mtime_ns)
        return True

    def _enter(self, relative: str) -> str:
        """The file's name, its folder (made if need be) opened: the next files are mostly its neighbours."""
        folder, _, name = relative.rpartition("/")
        if folder != self._folder:
            if relative.startswith("/") or ".." in relative.split("/") or not name:
                raise InputError(f"refusing to write {relative!r}: outside the output folder")
            self.close()
            target = os.path.join(self.root, folder)
            os.makedirs(target, exist_ok=True)
            new = os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
            old = None
            if self.previous is not None:
                try:
                    old = os.open(os.path.join(self.previous.out, folder), os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
                except OSError:
                    old = None
            self._folder, self._fds = folder, (new, old)
        elif ".." == name or not name:
            raise InputError(f"refusing to write {relative!r}: outside the output folder")
        return name


def write_tree(root: Path, files: dict[str, str]) -> None:
    """Write files under `root`, a fresh folder kfgen made (so it holds no symlinks), refusing any
    path that would leave it."""
    made: set[Path] = set()
    for relative, text in files.items():
        parts = Path(relative).parts
        if not parts or ".." in parts or Path(relative).is_absolute():
            raise InputError(f"refusing to write {relative!r}: outside the output folder")
        target = root / relative
        if target.parent not in made:
            target.parent.mkdir(parents=True, exist_ok=True)
            made.add(target.parent)
        with open(target, "x", encoding="utf-8", newline="\n") as handle:  # "x": never follow or reuse a file
            handle.write(text)


def exchange_in(staging: Path, out: Path) -> Path | None:
    """Make `staging` the new `out` in one step; returns where the previous tree now is (to remove)."""
    (staging / STAGING_MARK).unlink()
    if not out.exists():
        os.rename(staging, out)
        return None
    if _exchange(staging, out):
        return staging
    old = out.parent / f".{out.name}.kfgen-old-{_unique()}"
    os.rename(out, old)
    os.rename(staging, out)
    return old


# The detached remover: only the standard library (no kfgen import to pay for), and isolated (-I) from
# the caller's environment and folder. It holds the retired tree's lock (inherited) until it exits.
_REMOVER = "import shutil, sys; shutil.rmtree(sys.argv[1], ignore_errors=True)"


class Retired:
    """The previous tree, swapped out of the output: marked as kfgen's (so a leftover is removed by the
    next render), hidden from git (a `.gitignore` of `*`, as a venv does: `git status` right after a
    render shows nothing), and locked while it is being removed."""

    def __init__(self, folder: Path):
        try:
            (folder / STAGING_MARK).write_text("kfgen: the previous render, being removed\n")
            (folder / ".gitignore").write_text("*\n")
        except OSError:
            pass  # a full disk: the new tree is in place, and the old one is still provably kfgen's by its record
        self.folder = folder.absolute()  # the remover runs in /
        self.fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
        fcntl.flock(self.fd, fcntl.LOCK_EX)  # fresh and under the output's lock: never contended

    def remove(self) -> None:
        """Remove it now."""
        try:
            remove_tree(self.folder)
        finally:
            os.close(self.fd)

    def remove_after_exit(self) -> None:
        """Remove it in a detached process that outlives kfgen (its own session, no terminal, no pipes of
        ours: a caller waiting for kfgen's output never waits for it); it inherits the lock."""
        try:
            subprocess.Popen([sys.executable, "-I", "-c", _REMOVER, os.fspath(self.folder)], pass_fds=(self.fd,),
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             cwd="/", start_new_session=True)
        except OSError:
            pass  # no process to spare: the next render removes the leftover
        finally:
            os.close(self.fd)


def remove_tree(folder: Path | None) -> None:
    """Remove a previous tree (kfgen's own, never followed through symlinks), its big folders in
    parallel: unlinking is kernel work, and two threads halve it on a tree of thousands of files."""
    if folder is None:
        return
    parts = [sub for top in sorted(folder.iterdir()) if top.is_dir() and not top.is_symlink()
             for sub in sorted(top.iterdir()) if sub.is_dir() and not sub.is_symlink()]
    if len(parts) > 8:
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 2)) as pool:
            list(pool.map(shutil.rmtree, parts))
    shutil.rmtree(folder)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two paths (Linux renameat2); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    result = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    if ctypes.get_errno() in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()), str(b))
