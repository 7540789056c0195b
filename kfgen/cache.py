"""kfgen's cache outside the output tree: small JSON records that save work, never decide output.

Where: $KFGEN_CACHE_DIR, else $XDG_CACHE_HOME/kfgen, else ~/.cache/kfgen; KFGEN_CACHE_DIR=off turns
it off. A record is one file, `kfgen-cache <format> <sha256 of the rest>` then JSON, written
atomically; a record that cannot be read, does not match its digest or has another shape is
ignored (and rewritten later).
What a record holds is only ever a hint that is checked against the files it describes (their
stat data, or their bytes), so a stale or corrupted cache costs time, never correctness.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

FORMAT = 1
_MAGIC = b"kfgen-cache"


def cache_dir() -> Path | None:
    """The cache folder, or None when caching is off."""
    chosen = os.environ.get("KFGEN_CACHE_DIR")
    if chosen:
        return None if chosen == "off" else Path(chosen)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "kfgen"


def key(*parts: str) -> str:
    """A file name for a record about `parts` (paths, versions)."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def read(kind: str, name: str) -> Any:
    """The record's data, or None when absent or not trustworthy."""
    folder = cache_dir()
    if folder is None:
        return None
    path = folder / kind / f"{name}.json"
    try:
        raw = path.read_bytes()
        head, _, body = raw.partition(b"\n")
        if head != b"%s %d %s" % (_MAGIC, FORMAT, hashlib.sha256(body).hexdigest().encode()):
            return None
        return json.loads(body)
    except (OSError, ValueError):
        return None


def write(kind: str, name: str, data: Any) -> None:
    """Replace a record atomically; a cache that cannot be written is silently skipped."""
    folder = cache_dir()
    if folder is None:
        return
    target = folder / kind
    temporary = None
    try:
        target.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=target, prefix=f".{name}.", suffix=".tmp")
        body = json.dumps(data, separators=(",", ":")).encode()
        with os.fdopen(fd, "wb") as handle:
            handle.write(b"%s %d %s\n%s" % (_MAGIC, FORMAT, hashlib.sha256(body).hexdigest().encode(), body))
        os.replace(temporary, target / f"{name}.json")
    except OSError:
        if temporary:
            try:
                os.unlink(temporary)
            except OSError:
                pass

