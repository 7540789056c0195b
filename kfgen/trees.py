"""A rendered tree as the review commands read it (kfgen diff, kfgen check): every file's digest, and
its bytes on demand, whether the tree is on disk, in a commit of its repository, or rendered in
memory for the review.

Two trees differ in an environment exactly where the digests of its files (rendered/<env>/ and
argocd/<env>/) differ, so a review reads and parses only the environments a change reaches. A tree
rendered in memory keeps what an earlier tree proves unchanged (the environments whose hydration
keys match, as a render does) and runs kustomize only for the others, in a temporary folder holding
what their builds read.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, MutableMapping

from kfgen.build_failure import explain_build_failure
from kfgen.envpatch import Identity, identity
from kfgen.hydrate import Previous, hydrate, hydration_keys
from kfgen.kustomize import BuildError, find_engine
from kfgen.model import Stack
from kfgen.objects import Obj
from kfgen.record import digest, record_text
from kfgen.sources import read_sources
from kfgen.validate import validate
from kfgen.vocabulary import ARGOCD, BASES, ENVIRONMENTS, PROFILE_COMPONENTS, PROVENANCE, RENDERED
from kfgen.yamlio import load_all

Reader = Callable[[list[str]], dict[str, bytes]]  # paths -> their bytes (those it has)


@dataclass
class Tree:
    """A render's files by digest, its hydration keys, and a reader of its bytes (checked against the digests)."""

    stack: Stack
    files: dict[str, str]
    hydration: dict[str, str]
    reader: Reader
    _by_env: dict[str, dict[str, str]] | None = field(default=None, repr=False)

    def holding(self, relative: str, expected: str) -> bool:
        return self.files.get(relative) == expected

    def read(self, relative: str) -> bytes | None:
        return self.read_many([relative]).get(relative)

    def read_many(self, paths: list[str]) -> dict[str, bytes]:
        """The bytes of the files whose bytes are what the digests say."""
        return {p: data for p, data in self.reader(paths).items() if digest(data) == self.files.get(p)}

    def environment_files(self, env: str) -> dict[str, str]:
        """Digests of the files of one environment's objects (hydrated and Argo CD)."""
        if self._by_env is None:
            self._by_env = {}
            for path, file_digest in self.files.items():
                top, _, rest = path.partition("/")
                if top in (RENDERED, ARGOCD):
                    self._by_env.setdefault(rest.partition("/")[0], {})[path] = file_digest
        return self._by_env.get(env, {})

    def objects(self, env: str) -> dict[Identity, Obj]:
        """The environment's objects by identity: rendered/<env>/ then argocd/<env>/, each in path order."""
        paths = sorted((p for p in self.environment_files(env) if p.endswith(".yaml")),
                       key=lambda p: (not p.startswith(RENDERED), p.split("/")))
        found = self.read_many(paths)
        if len(found) != len(paths):
            missing = sorted(set(paths) - set(found))[0]
            raise TreeChanged(f"{missing}: its bytes are not what the render's record says")
        return {identity(o): o for p in paths for o in load_all(found[p].decode("utf-8")) if isinstance(o, dict)}


class TreeChanged(Exception):
    """A tree's file no longer holds what its record says (edited while kfgen read it, or a bad record)."""


class Objects(Mapping):
    """Environment -> its objects, parsed when first asked for."""

    def __init__(self, tree: Tree | None):
        self.tree = tree
        self.names = [env.name for env in tree.stack.environments] if tree else []
        self._loaded: dict[str, dict[Identity, Obj]] = {}

    def __getitem__(self, env: str) -> dict[Identity, Obj]:
        if env not in self.names:
            raise KeyError(env)
        if env not in self._loaded:
            assert self.tree is not None
            self._loaded[env] = self.tree.objects(env)
        return self._loaded[env]

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)


def on_disk(stack: Stack, out: Path, files: dict[str, str], hydration: dict[str, str]) -> Tree:
    """A tree in a folder (its files read without following symlinks)."""

    def reader(paths: list[str]) -> dict[str, bytes]:
        found = {}
        for path in paths:
            try:
                fd = os.open(out / path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
            except OSError:
                continue
            with os.fdopen(fd, "rb") as handle:
                found[path] = handle.read()
        return found

    return Tree(stack, files, hydration, reader)


@dataclass
class _MemoryOutput:
    """Where an in-memory render puts its files: the text of what it made, the digest of what it kept."""

    previous: Previous | None
    files: dict[str, str] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)

    def put(self, relative: str, text: str, digest_: str | None = None) -> str:
        self.texts[relative] = text
        self.files[relative] = digest_ or digest(text.encode())
        return self.files[relative]

    def reuse(self, relative: str, digest_: str) -> bool:
        if self.previous is None or not self.previous.holding(relative, digest_):
            return False
        self.files[relative] = digest_
        return True

    def read(self, paths: list[str]) -> dict[str, bytes]:
        found = {p: self.texts[p].encode() for p in paths if p in self.texts}
        for p in paths:
            if p not in found and self.previous is not None:
                data = self.previous.read(p)
                if data is not None:
                    found[p] = data
        return found


def render_in_memory(stack_path: Path, previous_for: Callable[[Stack], Previous | None] | None = None, *, display: str | None = None,
                     kustomize: str | None = None, allow_outside: bool = False, repo: Path | None = None,
                     memo: MutableMapping[str, dict] | None = None) -> Tree:
    """What `kfgen render` would write, without writing it: the same files (and record), the same
    checks (an InputError or LintFailed as render raises them); environments whose hydration keys
    the previous render (`previous_for(stack)`) has are taken from it; `memo`: as kfgen.plan.plan's."""
    from kfgen.render import LintFailed

    sources = read_sources(stack_path, display, allow_outside, repo, collect=True)
    stack, planned = validate(sources, memo)
    previous = previous_for(stack) if previous_for else None
    engine = find_engine(kustomize)
    output = _MemoryOutput(previous)
    for path, text in planned.items():
        output.put(path, text)
    envs = [env.name for env in stack.environments]
    keys = hydration_keys(planned, envs, engine.identity, stack.kubernetes_version)
    with tempfile.TemporaryDirectory(prefix="kfgen-build-") as tmp:
        def folder_of(built: list[str]) -> Path:
            """The files the builds of `built` read: the bases, the Components and their own folders."""
            wanted = (f"{BASES}/", f"{PROFILE_COMPONENTS}/", *(f"{ENVIRONMENTS}/{env}/" for env in built))
            for path, text in planned.items():
                if path.startswith(wanted):
                    target = Path(tmp) / path
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_text(text, encoding="utf-8", newline="\n")
            return Path(tmp)

        try:
            hydrated = hydrate(engine, envs, keys, output, stack.kubernetes_version, folder_of, previous)
        except BuildError as failure:  # as render: a patch kustomize cannot apply, named at its entry in the stack
            raise explain_build_failure(failure, stack, planned, engine, sources.doc, Path(tmp)) from None
    if hydrated.violations:
        raise LintFailed(hydrated.violations)
    hydration = {env: keys[env] for env in envs if env in keys}
    files = dict(output.files)
    output.put(PROVENANCE, record_text(stack, engine.identity, hydration, files))
    return Tree(stack, output.files, hydration, output.read)
