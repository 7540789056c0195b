"""kfgen diff: what a change to the stack changes in what runs and in how it syncs.

The stack is rendered twice with the real pipeline, as it was at a git ref (its repository's files
at that ref, copied out of git) and as it is now, under the same input rules as `kfgen render`
(nothing outside the repository unless --allow-outside-repo). A render committed with the stack
stands for it when its record proves it (kfgen check's proof): now, the committed output; at the
ref, the output committed there. Otherwise the stack is rendered in memory, keeping what those
prove unchanged (kfgen.trees), and only the environments whose files differ are read and compared. The hydrated objects and the Argo CD
objects of each environment are compared by identity (apiVersion, kind, namespace, name), and the
changes are ordered by impact: removed and changed before added; workloads, then Argo CD objects,
then the rest, CRDs last.
"""

from __future__ import annotations

import difflib
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kfgen import git
from kfgen.argocd import WORKLOAD_KINDS
from kfgen.check import prove
from kfgen.digests import scan
from kfgen.envpatch import Identity
from kfgen.errors import InputError
from kfgen.gitops_settings import gitops
from kfgen.kustomize import find_engine
from kfgen.model import Environment, Stack
from kfgen.objects import Obj
from kfgen.plan_memo import PlanMemo
from kfgen.record import PreviousTree, parse_record, read_record
from kfgen.render import default_out
from kfgen.sources import read_sources
from kfgen.trees import Objects, Tree, on_disk, render_in_memory
from kfgen.validate import build_stack
from kfgen.vocabulary import ARGOCD_API, PROVENANCE
from kfgen.yamlio import dump

RUNNING_KINDS = WORKLOAD_KINDS | {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod"}
ARGOCD_KINDS = {"Application", "ApplicationSet", "AppProject"}
AREAS = ("workload", "argocd", "other", "crd")  # by impact: what runs, how it syncs, the rest, bulk CRDs
CHANGES = ("removed", "changed", "added")


@dataclass(frozen=True)
class Change:
    env: str
    api_version: str
    kind: str
    namespace: str
    name: str
    change: str  # added | removed | changed
    diff: str
    area: str = "other"  # workload | argocd | other | crd

    def as_json(self) -> dict:
        return {"env": self.env, "apiVersion": self.api_version, "kind": self.kind, "namespace": self.namespace,
                "name": self.name, "change": self.change, "area": self.area, "diff": self.diff}

    @property
    def title(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"

    @property
    def counts(self) -> tuple[int, int]:
        """(lines added, lines removed) of its diff."""
        lines = self.diff.splitlines()
        return (sum(1 for line in lines if line.startswith("+") and not line.startswith("+++")),
                sum(1 for line in lines if line.startswith("-") and not line.startswith("---")))


@dataclass(frozen=True)
class EnvSync:
    """How an environment syncs, in words a reviewer reads."""

    automated: bool
    prune: bool
    self_heal: bool
    revision: str
    own_revision: bool
    destinations: str

    @classmethod
    def of(cls, env: Environment) -> EnvSync:
        if env.clusters:
            where = f"{len(env.clusters)} clusters ({', '.join(env.clusters)})"
        else:
            where = ", ".join(f"{k} {v}" for k, v in sorted(env.destination.items()))
        return cls(env.sync.automated, env.sync.prune, env.sync.self_heal, env.sync.revision, env.sync.own_revision, where)

    @property
    def syncs(self) -> str:
        if not self.automated:
            return "by hand"
        what = [w for w, on in (("prune", self.prune), ("self-heal", self.self_heal)) if on]
        return f"automatically ({', '.join(what) or 'no prune, no self-heal'})"

    @property
    def deploys(self) -> str:
        """When a change merged into the stack's branch reaches this environment."""
        how = "automatically" if self.automated else "when synced by hand"
        return f"when promoted to {self.revision}, {how}" if self.own_revision else f"on merge, {how}"

    def describe(self) -> str:
        return f"{self.syncs}, follows {self.revision}, on {self.destinations}"


@dataclass
class Snapshot:
    """A render's objects per environment (hydrated and Argo CD), and how each environment syncs."""

    objects: Mapping[str, dict[Identity, Obj]] = field(default_factory=dict)
    sync: dict[str, EnvSync] = field(default_factory=dict)


@dataclass
class Review:
    changes: list[Change]
    old: Snapshot
    new: Snapshot

    @property
    def environments(self) -> list[str]:
        return sorted(set(self.old.objects) | set(self.new.objects))

    def sync_changes(self) -> list[tuple[str, EnvSync | None, EnvSync | None]]:
        """(environment, before, after) where an environment's sync, revision or clusters change (or it comes or goes)."""
        return [(env, self.old.sync.get(env), self.new.sync.get(env)) for env in self.environments
                if self.old.sync.get(env) != self.new.sync.get(env)]


def snapshot(tree: Tree | None) -> Snapshot:
    """The objects of a rendered tree per environment (parsed when first read), and how each environment syncs."""
    if tree is None:
        return Snapshot()
    return Snapshot(Objects(tree), {env.name: EnvSync.of(env) for env in tree.stack.environments})


def diff(stack_path: Path, base_ref: str, *, display: str | None = None, kustomize: str | None = None,
         allow_outside: bool = False) -> Review:
    """The review of the stack now against the stack at `base_ref` (a branch, tag or commit of its repository)."""
    display = display or str(stack_path)
    stack_path = stack_path.resolve()
    repo = git.toplevel(stack_path.parent) if stack_path.parent.is_dir() else None
    if repo is None:
        raise InputError(f"{display}: not in a git repository; kfgen diff compares the stack with a git ref of its repository")
    repo = repo.resolve()
    commit = git.require_commit(repo, base_ref, "--base")
    relative = stack_path.relative_to(repo)
    new = _now(stack_path, display, kustomize, allow_outside)
    output = default_out(stack_path, new.stack).resolve()
    excluded = [str(output.relative_to(repo))] if output.is_relative_to(repo) and output != repo else []
    with tempfile.TemporaryDirectory(prefix="kfgen-diff-") as tmp:
        source = Path(tmp) / "base-src"
        git.extract(repo, commit, source, excluded)
        old_stack = source / relative
        old = None
        if old_stack.is_file():
            try:
                old = _at(repo, commit, source, old_stack, f"{base_ref}:{relative}", new, kustomize, allow_outside)
            except InputError as exc:
                raise InputError([f"the stack at {base_ref} does not validate with this kfgen:", *exc.lines()]) from None
    before, after = snapshot(old), snapshot(new)
    reached = [env for env in sorted(set(before.objects) | set(after.objects))
               if (old.environment_files(env) if old else {}) != new.environment_files(env)]
    changes = compare({env: before.objects[env] for env in reached if env in before.objects},
                      {env: after.objects[env] for env in reached if env in after.objects})
    return Review(changes, before, after)


def _now(stack_path: Path, display: str, kustomize: str | None, allow_outside: bool) -> Tree:
    """The stack's render now: its committed render when proven up to date (kfgen check), else rendered
    in memory, keeping what the committed render proves unchanged."""
    proof = prove(stack_path, display=display, kustomize=kustomize, allow_outside=allow_outside)
    if proof is not None:
        return on_disk(build_stack(proof.sources), proof.out, proof.record.files, proof.record.hydration)

    def previous(stack: Stack) -> PreviousTree | None:
        out = default_out(stack_path, stack)
        record = read_record(out) if out.is_dir() and not out.is_symlink() else None
        return PreviousTree(out, record, scan(out)) if record else None

    return render_in_memory(stack_path, previous, display=display, kustomize=kustomize, allow_outside=allow_outside,
                            memo=PlanMemo(stack_path))  # the plans `kfgen render` of this stack kept (never saved from here)


def _at(repo: Path, commit: str, source: Path, stack_path: Path, display: str, new: Tree, kustomize: str | None,
        allow_outside: bool) -> Tree:
    """The stack's render at a commit: the render committed with it when its record proves it (the same
    inputs, kfgen build and kustomize), else rendered in memory, keeping what `new` has of it."""
    sources = read_sources(stack_path, display, allow_outside, source)
    problems: list = []
    settings = gitops(sources.doc, sources.folder_in_repo, lambda *args, **kwargs: problems.append(args))
    folder = settings.repo_path
    if not problems and folder != ".":
        raw = git.read_blobs(repo, commit, [f"{folder}/{PROVENANCE}"]).get(f"{folder}/{PROVENANCE}")
        record = parse_record(raw) if raw is not None else None
        if (record is not None and record.made_by_this_kfgen(find_engine(kustomize).identity)
                and (record.data.get("stackDigest"), record.data.get("repositoryPath")) == (f"sha256:{sources.digest()}", folder)):
            def reader(paths: list[str]) -> dict[str, bytes]:
                found = git.read_blobs(repo, commit, [f"{folder}/{p}" for p in paths])
                return {p: found[f"{folder}/{p}"] for p in paths if f"{folder}/{p}" in found}

            return Tree(build_stack(sources), record.files, record.hydration, reader)
    return render_in_memory(stack_path, lambda stack: new, display=display, kustomize=kustomize, allow_outside=allow_outside, repo=source)


def area(api_version: str, kind: str) -> str:
    if kind in RUNNING_KINDS:
        return "workload"
    if api_version == ARGOCD_API and kind in ARGOCD_KINDS:
        return "argocd"
    if kind == "CustomResourceDefinition":
        return "crd"
    return "other"


def impact(change: Change) -> tuple:
    """Sort key: removed and changed before added; then workloads, Argo CD, the rest, CRDs; then by name."""
    return (change.change == "added", AREAS.index(change.area), CHANGES.index(change.change), change.env, change.kind,
            change.namespace, change.name)


def compare(old: dict[str, dict[Identity, Obj]], new: dict[str, dict[Identity, Obj]]) -> list[Change]:
    """Every added, removed and changed object per environment and identity, in impact order."""
    changes = []
    for env in sorted(set(old) | set(new)):
        before, after = old.get(env, {}), new.get(env, {})
        for key in set(before) | set(after):
            a, b = before.get(key), after.get(key)
            if a == b:
                continue
            kind = "added" if a is None else "removed" if b is None else "changed"
            api_version, kind_name, namespace, name = key
            label = f"{env}/{kind_name}/{namespace + '/' if namespace else ''}{name}"
            text = "".join(difflib.unified_diff(dump(a).splitlines(True) if a else [], dump(b).splitlines(True) if b else [],
                                                f"a/{label}", f"b/{label}", n=5))
            changes.append(Change(env, api_version, kind_name, namespace, name, kind, text, area(api_version, kind_name)))
    return sorted(changes, key=impact)


def summary(changes: list[Change], envs: list[str] | None = None) -> dict:
    per_env: dict[str, dict[str, int]] = {env: {"added": 0, "removed": 0, "changed": 0} for env in envs or []}
    for c in changes:
        per_env.setdefault(c.env, {"added": 0, "removed": 0, "changed": 0})[c.change] += 1
    totals = {k: sum(v[k] for v in per_env.values()) for k in ("added", "removed", "changed")}
    return {"environments": dict(sorted(per_env.items())), **totals}
