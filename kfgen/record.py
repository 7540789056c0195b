"""provenance.json: what made an output tree, and every file in it with its digest, sealed.

The record names every input of the render by digest: the stack file and every file it reads
(stackDigest), kfgen's own code and data (build), the kustomize engine (engine), where the tree
sits in its repository (repositoryPath); per environment, the digest of everything its kustomize
build reads (hydration); and every file written (files). It ends with a seal, the sha256 of the
text above it: a record edited by hand or merged line by line by git no longer matches its seal,
and kfgen then trusts it for ownership only (which files it may replace), never to skip work.
No timestamps: identical inputs, identical bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from kfgen import __version__
from kfgen.digests import FileDigests
from kfgen.shipped import shipped_dir
from kfgen.vocabulary import PROVENANCE

if TYPE_CHECKING:
    from kfgen.model import Stack

MAX_RECORD_BYTES = 64 * 1024 * 1024
_SEAL = ',\n  "seal": "sha256:'


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@cache
def build_digest() -> str:
    """sha256 over kfgen's code and shipped data (schemas, built-in profiles): a kfgen that renders
    differently is a different build, whatever its version says."""
    package = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for label, root in (("kfgen", package), ("schemas", shipped_dir("schemas")), ("overlays", shipped_dir("overlays"))):
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d not in ("__pycache__", "_data"))
            for name in sorted(files):
                if name.endswith((".pyc", ".pyo")):
                    continue
                path = Path(folder) / name
                h.update(f"{label}/{path.relative_to(root).as_posix()}\0".encode())
                h.update(hashlib.sha256(path.read_bytes()).digest())
    return "sha256:" + h.hexdigest()


def record_text(stack: Stack, engine: str, hydration: dict[str, str], files: dict[str, str]) -> str:
    """The sealed provenance.json of a render (`files`: path -> digest)."""
    from kfgen.plan import env_components

    data = {
        "generator": "kfgen",
        "version": __version__,
        "build": build_digest(),
        "engine": engine,
        "stack": stack.name,
        "stackDigest": f"sha256:{stack.digest}",
        "repositoryPath": stack.gitops.repo_path,  # where this tree sits in its repository: Argo CD's paths start here
        "kubernetesVersion": stack.kubernetes_version,
        "components": {name: {"enabled": c.enabled, "install": c.install, "version": c.version}
                       for name, c in stack.components.items()},
        "environments": {env.name: {"cloud": env.cloud.name, "components": {n: env.components[n].version for n in env_components(env)}}
                         for env in stack.environments},
        "hydration": dict(sorted(hydration.items())),
        "files": None,
    }
    head = json.dumps(data, indent=2)
    # json's indenting encoder is pure Python: 30,000 files take it 0.3 s; the same text, written directly
    listing = ",\n".join(f"    {json.dumps(path)}: {json.dumps(files[path])}" for path in sorted(files))
    body = head.replace('\n  "files": null\n}', '\n  "files": {\n' + listing + "\n  }\n}" if files else '\n  "files": {}\n}')
    return body[:-2] + _SEAL + hashlib.sha256(body.encode()).hexdigest() + '"\n}\n'


@dataclass(frozen=True)
class Record:
    """A sealed record read back from an output tree."""

    data: dict

    @property
    def files(self) -> dict[str, str]:
        return self.data["files"]

    @property
    def hydration(self) -> dict[str, str]:
        return self.data.get("hydration") or {}

    def made_by_this_kfgen(self, engine: str) -> bool:
        """Written by this very build of kfgen with this kustomize: its files are what this kfgen writes."""
        return self.data.get("build") == build_digest() and self.data.get("engine") == engine


def read_record(out: Path) -> Record | None:
    """The record of `out` when it is kfgen's and its seal holds; None otherwise (no record, not
    readable, edited or merged by hand, or written by a kfgen that did not seal it)."""
    path = out / PROVENANCE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        raw = handle.read(MAX_RECORD_BYTES + 1)
    return parse_record(raw)


def parse_record(raw: bytes) -> Record | None:
    """A record from its bytes, when its seal holds."""
    if len(raw) > MAX_RECORD_BYTES:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    at = text.rfind(_SEAL)
    if at < 0 or not text.endswith('"\n}\n'):
        return None
    body = text[:at] + "\n}"
    if text[at + len(_SEAL):-4] != hashlib.sha256(body.encode()).hexdigest():
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if (not isinstance(data, dict) or data.get("generator") != "kfgen" or not isinstance(data.get("files"), dict)
            or not isinstance(data.get("hydration", {}), dict)):
        return None
    return Record(data)


class PreviousTree:
    """The tree a render replaces, as a source of files it can keep: those whose bytes are still
    exactly what its sealed record says (by digest; see kfgen.digests)."""

    def __init__(self, out: Path, record: Record, found: dict[str, os.stat_result]):
        self.out = out
        self.record = record
        self.found = found  # what the folder holds (kfgen.digests.scan)
        self.digests = FileDigests(out)
        self._held: dict[str, tuple[str, os.stat_result] | None] = {}

    @property
    def files(self) -> dict[str, str]:
        return self.record.files

    @property
    def hydration(self) -> dict[str, str]:
        return self.record.hydration

    def holding(self, relative: str, expected: str) -> tuple[str, os.stat_result] | None:
        """(path, stat) of the previous tree's file at `relative` when the record and the file's bytes both say `expected`."""
        if self.record.files.get(relative) != expected or relative not in self.found:
            return None
        if relative not in self._held:  # each file is proven once per render
            found = self.digests.digest(relative, self.found[relative])
            self._held[relative] = (os.path.join(self.out, relative), found[1]) if found and found[0] == expected else None
        return self._held[relative]

    def read(self, relative: str) -> bytes | None:
        """The bytes of a file of the previous tree, when they are what the record says."""
        expected = self.record.files.get(relative)
        try:
            fd = os.open(os.path.join(self.out, relative), os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            return None
        with os.fdopen(fd, "rb") as handle:
            data = handle.read()
        return data if expected == digest(data) else None
