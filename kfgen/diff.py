"""kfgen diff: what a change to the stack changes in what runs and in how it syncs.

The stack is rendered twice with the real pipeline, as it was at a git ref (its repository's files
at that ref, copied out of git) and as it is now, under the same input rules as `kfgen render`
(nothing outside the repository unless --allow-outside-repo). The hydrated objects and the Argo CD
objects of each environment are compared by identity (apiVersion, kind, namespace, name), and the
changes are ordered by impact: removed and changed before added; workloads, then Argo CD objects,
then the rest, CRDs last.
"""

from __future__ import annotations

import difflib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from kfgen import git
from kfgen.argocd import WORKLOAD_KINDS
from kfgen.envpatch import Identity, identity
from kfgen.errors import InputError
from kfgen.model import Environment, Stack
from kfgen.objects import Obj
from kfgen.render import default_out, render
from kfgen.rendered import rendered_objects
from kfgen.vocabulary import ARGOCD, ARGOCD_API, RENDERED
from kfgen.yamlio import dump, load_all

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

    objects: dict[str, dict[Identity, Obj]] = field(default_factory=dict)
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


def snapshot(out: Path, stack: Stack) -> Snapshot:
    """The objects of a rendered tree, per environment."""
    found = Snapshot()
    for env in stack.environments:
        objects = rendered_objects(out, env.name) if (out / RENDERED / env.name).is_dir() else []
        argocd = out / ARGOCD / env.name
        objects += [o for f in sorted(argocd.rglob("*.yaml")) if not f.is_symlink() for o in load_all(f.read_text()) if isinstance(o, dict)]
        found.objects[env.name] = {identity(o): o for o in objects}
        found.sync[env.name] = EnvSync.of(env)
    return found


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
    with tempfile.TemporaryDirectory(prefix="kfgen-diff-") as tmp:
        tmp_path = Path(tmp)
        new = render(stack_path, tmp_path / "new", display=display, kustomize=kustomize, allow_outside=allow_outside)
        output = default_out(stack_path, new.stack).resolve()
        excluded = [str(output.relative_to(repo))] if output.is_relative_to(repo) and output != repo else []
        source = tmp_path / "base-src"
        git.extract(repo, commit, source, excluded)
        old_stack = source / relative
        old = Snapshot()
        if old_stack.is_file():
            try:
                rendered = render(old_stack, tmp_path / "old", display=f"{base_ref}:{relative}", kustomize=kustomize,
                                  allow_outside=allow_outside, repo=source)
            except InputError as exc:
                raise InputError([f"the stack at {base_ref} does not validate with this kfgen:", *exc.lines()]) from None
            old = snapshot(rendered.out, rendered.stack)
        current = snapshot(new.out, new.stack)
        return Review(compare(old.objects, current.objects), old, current)


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
