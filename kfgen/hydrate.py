"""Hydration: each environment's `kustomize build envs/<env>`, one file per object in rendered/<env>/.

An environment's hydration key is the digest of everything its build reads (its own folder envs/<env>/,
the bases and Components every environment shares) and of what decides the bytes kfgen makes of
the build's output (kustomize's version, kfgen's build, the Kubernetes version lint checks against).
When the previous render recorded the same key for it, and its files still hold what that render
wrote (kfgen.record.PreviousTree), they are kept, hard-linked, and kustomize does not run for it.
The others are built concurrently; each build's output is split and written while the next builds
run, each distinct document parsed and dumped once (kfgen.split). Lint runs last, over every
environment, exactly as it would over a full render (see `lint_documents`).
"""

from __future__ import annotations

import hashlib
import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

from kfgen.errors import InputError
from kfgen.kustomize import Engine
from kfgen.lint import Violation, lint_objects
from kfgen.objects import Obj
from kfgen.record import build_digest
from kfgen.split import Document, Documents
from kfgen.vocabulary import BASES, ENVIRONMENTS, KUSTOMIZATION, PROFILE_COMPONENTS, RENDERED
from kfgen.yamlio import load

Tree = dict[str, str]


@dataclass
class Hydration:
    objects: dict[str, int] = field(default_factory=dict)  # per environment, in order
    reused: list[str] = field(default_factory=list)  # environments whose previous files were kept
    violations: list[Violation] = field(default_factory=list)


def hydration_keys(tree: Tree, envs: list[str], engine: str, kubernetes_version: str) -> dict[str, str]:
    """Environment -> the digest of what its hydration depends on (no key: always built)."""
    shared = hashlib.sha256(f"{engine}\0{build_digest()}\0{kubernetes_version}\0".encode())
    own: dict[str, list[str]] = {env: [] for env in envs}
    reads_outside = False
    for path in sorted(tree):
        top, _, rest = path.partition("/")
        if top == ENVIRONMENTS:
            own.setdefault(rest.partition("/")[0], []).append(path)
        elif top in (BASES, PROFILE_COMPONENTS):
            shared.update(f"{path}\0{_sha(tree[path])}\0".encode())
        else:
            continue
        if posixpath.basename(path) == KUSTOMIZATION:
            reads_outside |= not _stays_inside(path, load(tree[path]))
    if reads_outside:  # a layout kfgen does not make: no environment can prove what its build read
        return {}
    keys = {}
    for env in envs:
        h = shared.copy()
        for path in own[env]:
            h.update(f"{path}\0{_sha(tree[path])}\0".encode())
        keys[env] = "sha256:" + h.hexdigest()
    return keys


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _stays_inside(path: str, kustomization: object) -> bool:
    """Every file a kustomization names is in its environment's folder, a base or a Component."""
    folder = posixpath.dirname(path)
    allowed = [f"{BASES}/", f"{PROFILE_COMPONENTS}/"]
    if folder.startswith(f"{ENVIRONMENTS}/"):
        allowed.append("/".join(folder.split("/")[:2]) + "/")
    if not isinstance(kustomization, dict):
        return False
    named = [*(kustomization.get("resources") or []), *(kustomization.get("components") or [])]
    named += [p.get("path") for p in kustomization.get("patches") or [] if isinstance(p, dict) and "path" in p]
    return all(isinstance(n, str) and (posixpath.normpath(posixpath.join(folder, n)) + "/").startswith(tuple(allowed)) for n in named)


class Previous(Protocol):
    """A previous render whose files a render may keep: on disk (kfgen.record.PreviousTree) or read
    by a review (kfgen.trees.Tree)."""

    @property
    def files(self) -> dict[str, str]: ...  # path -> digest, as its record says

    @property
    def hydration(self) -> dict[str, str]: ...  # environment -> hydration key

    def holding(self, relative: str, expected: str) -> object: ...  # truthy: the file holds `expected`

    def read(self, relative: str) -> bytes | None: ...  # its bytes, when they are what the record says


class Output(Protocol):
    """Where a render's files go: a staging folder (kfgen.writer.TreeOutput) or memory (kfgen.trees)."""

    files: dict[str, str]

    def put(self, relative: str, text: str, digest: str | None = None) -> str: ...

    def reuse(self, relative: str, digest: str) -> bool: ...


def hydrate(engine: Engine, envs: list[str], keys: dict[str, str], output: Output, kubernetes_version: str,
            folder_of: Callable[[list[str]], Path], previous: Previous | None = None,
            progress: Callable[[str], None] | None = None) -> Hydration:
    """Put rendered/<env>/ of every environment into `output` (kept or built), then lint them all.
    `folder_of(envs)`: a folder holding the tree the given environments build from (envs/<env>/...)."""
    result = Hydration()
    documents = Documents()
    by_env = _rendered_by_env(previous)
    kept = {env: _kept_files(previous, by_env.get(env, []), keys.get(env), previous.hydration.get(env) if previous else None)
            for env in envs}
    built = [env for env in envs if kept[env] is None]
    placed: dict[str, list[tuple[str, Document]]] = {}

    def keep() -> None:  # while the first builds run
        for env in envs:
            for path, digest in kept[env] or []:
                if not output.reuse(path, digest):  # not linkable (another file system): copied
                    assert previous is not None
                    output.put(path, _read(previous, path).decode("utf-8"), digest)
        result.reused.extend(env for env in envs if kept[env] is not None)

    def consume(index: int, stream: str) -> None:
        env = built[index]
        files = documents.split(env, stream)
        for path, document in files:
            output.put(path, document.text, document.digest)
        placed[env] = files
        if progress:
            progress(env)

    root = folder_of(built) if built else None
    engine.build_each([root / ENVIRONMENTS / env for env in built] if root else [], consume, meanwhile=keep)
    for env in envs:
        result.objects[env] = len(placed[env]) if env in placed else len(kept[env] or [])
    result.violations = lint_documents(envs, placed, kept, documents, kubernetes_version, previous, output)
    return result


def _rendered_by_env(previous: Previous | None) -> dict[str, list[tuple[str, str]]]:
    """The previous render's hydrated files per environment, sorted."""
    found: dict[str, list[tuple[str, str]]] = {}
    for path, digest in sorted(previous.files.items()) if previous else []:
        if path.startswith(f"{RENDERED}/"):
            found.setdefault(path.split("/", 2)[1], []).append((path, digest))
    return found


def _kept_files(previous: Previous | None, files: list[tuple[str, str]], key: str | None, recorded: str | None) -> list[tuple[str, str]] | None:
    """An environment's previous files when the render can keep them all: the same hydration key,
    every file still what the record says. None: build it."""
    if previous is None or key is None or recorded != key:
        return None
    if not all(previous.holding(path, digest) for path, digest in files):
        return None
    return files


def lint_documents(envs: list[str], placed: dict[str, list[tuple[str, Document]]], kept: dict[str, list[tuple[str, str]] | None],
                   documents: Documents, kubernetes_version: str, previous: Previous | None, output: Output) -> list[Violation]:
    """Lint as over a full render: every object against its schema and the policies, the custom
    resources against the render's own CRDs (the first of each kind, in environment order). A kept
    environment passed this lint when it was written; it is linted again only when the CRDs
    other environments bring have changed since (its own CRDs always count, in their place)."""
    recheck = previous is not None and _crd_files(previous.files) != _crd_files(output.files)
    entries: list[tuple[str, Obj]] = []
    for env in envs:
        if env in placed:
            entries += [(path, document.obj) for path, document in placed[env]]
            continue
        for path, _ in kept[env] or []:
            if recheck or _is_crd_file(path):
                assert previous is not None
                document = documents.of_text(_read(previous, path).decode("utf-8"))
                if document is not None:
                    entries.append((path, document.obj))
    # CRDs of components installed outside kfgen live in the cluster: `kfgen lint --crds` checks those
    return lint_objects(entries, kubernetes_version, [], True)


def _read(previous: Previous, path: str) -> bytes:
    data = previous.read(path)
    if data is None:
        raise InputError(f"{path} of the previous render changed while kfgen read it; render again")
    return data


def _is_crd_file(path: str) -> bool:
    folder, _, name = path.rpartition("/")
    return folder.endswith("/cluster") and name.startswith(("customresourcedefinition-", "customresourcedefinition."))


def _crd_files(files: dict[str, str]) -> list[tuple[str, str]]:
    return [(path, digest) for path, digest in sorted(files.items()) if path.startswith(f"{RENDERED}/") and _is_crd_file(path)]
