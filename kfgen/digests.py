"""Which files of an output tree still hold the bytes its record says: sha256 by content, remembered
by stat data the way git's index remembers a work tree.

Reading and hashing 25,000 small files costs about 0.4 s; comparing their stat data, 0.08 s. A
file's digest is taken from kfgen's cache only when its inode, size, mtime and ctime are exactly
those the cache recorded; any write, rename or `touch` changes one of them (a write always moves
ctime, which no tool can set back), and then the file is read and hashed again. Like git, a digest
is not remembered for a file that changed within the clock's granularity of being read (a second
write in the same tick would not show in its stat data). The cache is a hint: a missing, stale or
corrupted cache only means files are read again.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from pathlib import Path

from kfgen import cache

_RACY_NS = 50_000_000  # a file changed less than this before it was read is read again next time


def stamp(info: os.stat_result) -> str:
    """What kfgen compares of a file's stat data: inode, size, mtime and ctime (ns)."""
    return f"{info.st_ino}:{info.st_size}:{info.st_mtime_ns}:{info.st_ctime_ns}"


def scan(root: Path) -> dict[str, os.stat_result]:
    """Every entry under `root` that is not a folder (files, symlinks, anything else), and every
    entry named .git (a folder too), by its path relative to `root`, with its own stat data (symlinks
    are never followed; a symlink to a folder is an entry, not a folder)."""
    found: dict[str, os.stat_result] = {}
    pending = [("", os.fspath(root))]
    while pending:
        prefix, folder = pending.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name == ".git":
                    found[prefix + entry.name] = entry.stat(follow_symlinks=False)
                elif entry.is_dir(follow_symlinks=False):
                    pending.append((f"{prefix}{entry.name}/", entry.path))
                else:
                    found[prefix + entry.name] = entry.stat(follow_symlinks=False)
    return found


class FileDigests:
    """Digests of the files under `root` (paths relative to it, never following a symlink)."""

    def __init__(self, root: Path, remembered: bool = True):
        self.root = root
        self.name = cache.key("tree", os.path.realpath(root))
        known = cache.read("trees", self.name) if remembered else None
        entries = known.get("entries") if isinstance(known, dict) and known.get("root") == os.path.realpath(root) else None
        self.known: dict[str, str] = entries if isinstance(entries, dict) else {}  # path -> "<stamp> <digest>"
        self.fresh: dict[str, str] = {}  # what this process learned, to remember

    def holds(self, relative: str, info: os.stat_result, expected: str) -> bool:
        """The file (with the stat data just taken) holds the bytes whose digest is `expected`."""
        if self.known.get(relative) == f"{stamp(info)} {expected}":
            return True
        found = self.digest(relative, info)
        return found is not None and found[0] == expected

    def digest(self, relative: str, info: os.stat_result | None = None) -> tuple[str, os.stat_result] | None:
        """(sha256, stat) of a regular file, or None (missing, not a regular file, changing while read).
        `info`: its stat data, when the caller has just taken it (kfgen.digests.scan)."""
        path = os.path.join(self.root, relative)
        if info is None:
            try:
                info = os.lstat(path)
            except OSError:
                return None
        if not stat.S_ISREG(info.st_mode):
            return None
        entry = self.known.get(relative)
        if isinstance(entry, str):
            seen, _, digest = entry.partition(" ")
            if seen == stamp(info):
                return digest, info
        return self._hash(relative, path, info)

    def _hash(self, relative: str, path: str, info: os.stat_result) -> tuple[str, os.stat_result] | None:
        started = time.time_ns()
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            return None
        try:
            before = os.fstat(fd)
            data = os.read(fd, before.st_size + 1)
            while len(data) <= before.st_size and (more := os.read(fd, before.st_size + 1 - len(data))):
                data += more
        finally:
            os.close(fd)
        if stamp(before) != stamp(info) or len(data) != info.st_size:
            return None  # changed since kfgen looked at it, or while it read it
        found = "sha256:" + hashlib.sha256(data).hexdigest()
        if info.st_ctime_ns < started - _RACY_NS:
            self.fresh[relative] = f"{stamp(info)} {found}"
        return found, info

    def remember(self, relative: str, digest: str, info: os.stat_result) -> None:
        """A file kfgen itself wrote (or linked), with the stat data it has now."""
        self.fresh[relative] = f"{stamp(info)} {digest}"

    def save(self, complete: bool = False) -> None:
        """Keep what was learned; `complete`: forget every file not seen in this process (a new tree)."""
        if not self.fresh and not complete:
            return
        entries = self.fresh if complete else {**self.known, **self.fresh}
        cache.write("trees", self.name, {"root": os.path.realpath(self.root), "entries": entries})
