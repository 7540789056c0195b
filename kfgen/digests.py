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
Stamp = tuple[int, int, int, int]  # inode, size, mtime_ns, ctime_ns


def stamp(info: os.stat_result) -> Stamp:
    return (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


class FileDigests:
    """Digests of the files under `root` (paths relative to it, never following a symlink)."""

    def __init__(self, root: Path, remembered: bool = True):
        self.root = root
        self.name = cache.key("tree", os.path.realpath(root))
        known = cache.read("trees", self.name) if remembered else None
        entries = known.get("entries") if isinstance(known, dict) and known.get("root") == os.path.realpath(root) else None
        self.known: dict[str, list] = entries if isinstance(entries, dict) else {}
        self.fresh: dict[str, list] = {}  # what this process learned, to remember

    def digest(self, relative: str) -> tuple[str, os.stat_result] | None:
        """(sha256, stat) of a regular file, or None (missing, not a regular file, changing while read)."""
        path = os.path.join(self.root, relative)
        try:
            info = os.lstat(path)
        except OSError:
            return None
        if not stat.S_ISREG(info.st_mode):
            return None
        entry = self.known.get(relative)
        if entry and len(entry) == 5 and tuple(entry[:4]) == stamp(info) and isinstance(entry[4], str):
            return entry[4], info
        return self._hash(relative, path, info)

    def _hash(self, relative: str, path: str, info: os.stat_result) -> tuple[str, os.stat_result] | None:
        started = time.time_ns()
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            return None
        try:
            before = os.fstat(fd)
            chunks = []
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
            after = os.fstat(fd)
        finally:
            os.close(fd)
        if stamp(before) != stamp(info) or stamp(after) != stamp(info):
            return None  # changed while kfgen looked at it
        found = "sha256:" + hashlib.sha256(b"".join(chunks)).hexdigest()
        if info.st_ctime_ns < started - _RACY_NS:
            self.fresh[relative] = [*stamp(info), found]
        return found, info

    def remember(self, relative: str, digest: str, info: os.stat_result) -> None:
        """A file kfgen itself wrote (or linked), with the stat data it has now."""
        self.fresh[relative] = [*stamp(info), digest]

    def save(self, complete: bool = False) -> None:
        """Keep what was learned; `complete`: forget every file not seen in this process (a new tree)."""
        if not self.fresh and not complete:
            return
        entries = self.fresh if complete else {**self.known, **self.fresh}
        cache.write("trees", self.name, {"root": os.path.realpath(self.root), "entries": entries})
