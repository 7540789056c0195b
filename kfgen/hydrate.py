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
from typing import Callable

from kfgen.errors import InputError
from kfgen.kustomize import Engine
from kfgen.lint import Violation, lint_objects
from kfgen.objects import Obj
from kfgen.record import PreviousTree, build_digest
from kfgen.split import Document, Documents
from kfgen.vocabulary import BASES, ENVIRONMENTS, KUSTOMIZATION, PROFILE_COMPONENTS, RENDERED
from kfgen.writer import TreeOutput
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


def hydrate(engine: Engine, staging: Path, envs: list[str], keys: dict[str, str], output: TreeOutput, kubernetes_version: str,
            previous: PreviousTree | None = None, progress: Callable[[str], None] | None = None) -> Hydration:
    """Write rendered/<env>/ of every environment into `output` (kept or built), then lint them all."""
    result = Hydration()
    documents = Documents()
    kept = {env: _kept_files(previous, env, keys.get(env)) for env in envs}
    for env, files in kept.items():
        if files is None:
            continue
        assert previous is not None
        for path, digest in files:
            if not output.reuse(path, digest):  # not linkable (another file system): copied
                output.put(path, _read(previous, path).decode("utf-8"), digest)
        result.reused.append(env)
    built = [env for env in envs if env not in result.reused]
    placed: dict[str, list[tuple[str, Document]]] = {}

    def consume(index: int, stream: str) -> None:
        env = built[index]
        files = documents.split(env, stream)
        for path, document in files:
            output.put(path, document.text, document.digest)
        placed[env] = files
        if progress:
            progress(env)

    engine.build_each([staging / ENVIRONMENTS / env for env in built], consume)
    for env in envs:
        result.objects[env] = len(placed[env]) if env in placed else len(kept[env] or [])
    result.violations = lint_documents(envs, placed, kept, documents, kubernetes_version, previous, output)
    return result


def _kept_files(previous: PreviousTree | None, env: str, key: str | None) -> list[tuple[str, str]] | None:
    """The previous render's files of `env` when it can keep them all: same hydration key, every
    file still what the record says. None: build it."""
    if previous is None or key is None or previous.record.hydration.get(env) != key:
        return None
    prefix = f"{RENDERED}/{env}/"
    files = [(path, digest) for path, digest in sorted(previous.record.files.items()) if path.startswith(prefix)]
    if not all(previous.holding(path, digest) for path, digest in files):
        return None
    return files


def lint_documents(envs: list[str], placed: dict[str, list[tuple[str, Document]]], kept: dict[str, list[tuple[str, str]] | None],
                   documents: Documents, kubernetes_version: str, previous: PreviousTree | None, output: TreeOutput) -> list[Violation]:
    """Lint as over a full render: every object against its schema and the policies, the custom
    resources against the render's own CRDs (the first of each kind, in environment order). A kept
    environment passed this lint when it was written; it is linted again only when the CRDs
    other environments bring have changed since (its own CRDs always count, in their place)."""
    recheck = previous is not None and _crd_files(previous.record.files) != _crd_files(output.files)
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


def _read(previous: PreviousTree, path: str) -> bytes:
    data = previous.read(path)
    if data is None:
        raise InputError(f"{previous.out}: {path} changed while kfgen read it; render again")
    return data


def _is_crd_file(path: str) -> bool:
    folder, _, name = path.rpartition("/")
    return folder.endswith("/cluster") and name.startswith(("customresourcedefinition-", "customresourcedefinition."))


def _crd_files(files: dict[str, str]) -> list[tuple[str, str]]:
    return [(path, digest) for path, digest in sorted(files.items()) if path.startswith(f"{RENDERED}/") and _is_crd_file(path)]
