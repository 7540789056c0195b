"""kfgen promote: move an environment's branch to the commit the previous environment runs.

An environment with its own revision (`sync.revision: env/prod`) has its root Application and every
component Application follow that branch, so what it runs and how it syncs are exactly that branch's
tip: the render of the stack for that environment, as committed there. Promotion fast-forwards the
branch to the commit the source environment follows (the tip of its own branch, or of
gitops.targetRevision), after checking that the commit holds the environment's render and that its
Applications there follow the branch; the review is the difference of the environment's committed
objects (hydrated and Argo CD) between the old tip and the new one. Nothing is pushed: `git push`
(or a pull request into the branch) is the reviewer's step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from kfgen import git
from kfgen.diff import EnvSync, Review, Snapshot, compare
from kfgen.envpatch import identity
from kfgen.errors import InputError
from kfgen.model import Stack
from kfgen.render import load_stack
from kfgen.vocabulary import ARGOCD, ARGOCD_APPS, ARGOCD_ROOT, RENDERED
from kfgen.yamlio import load_all

COMMIT = re.compile(r"^[0-9a-f]{40}$")


@dataclass
class Promotion:
    source: str
    target: str
    branch: str
    old: str | None  # the branch's commit before (None: a new branch)
    new: str
    review: Review
    moved: bool  # False for --dry-run, or when the branch is already there


def promote(stack_path: Path, source: str, target: str, *, revision: str | None = None, rollback: bool = False,
            dry_run: bool = False, display: str | None = None) -> Promotion:
    """Promote `target` to what `source` runs (or to `revision`); see the module docstring."""
    display = display or str(stack_path)
    stack = load_stack(stack_path, display)
    envs = {e.name: e for e in stack.environments}
    for flag, name in (("--from", source), ("--to", target)):
        if name not in envs:
            raise InputError(f"{flag} {name}: no environment {name!r} in {display} (have: {', '.join(envs)})")
    if source == target:
        raise InputError(f"--from and --to name one environment ({source}); promote from the environment before it")
    repo = git.toplevel(stack_path.resolve().parent)
    if repo is None:
        raise InputError(f"{display}: not in a git repository; environments are promoted between git revisions")
    branch = envs[target].sync.revision
    if not envs[target].sync.own_revision:
        raise InputError(f"--to {target}: it follows {branch!r}, the stack's own revision (spec.gitops.targetRevision); give it "
                         f"a branch of its own to promote into: spec.environments.{target}.sync.revision: env/{target}")
    if COMMIT.match(branch) or git.commit_of(repo, f"refs/tags/{branch}"):
        raise InputError(f"--to {target}: it follows {branch!r}, a fixed commit or tag; give it a branch to promote into "
                         f"(spec.environments.{target}.sync.revision: env/{target})")
    wanted = revision or envs[source].sync.revision
    new = _branch_commit(repo, wanted) if revision is None else git.commit_of(repo, revision)
    if new is None:
        flag = "--revision" if revision else f"--from {source}"
        raise InputError(f"{flag}: {wanted!r} names no commit in {repo}; fetch it (git fetch origin {wanted}) "
                         "or pass --revision with a branch, tag or commit that exists")
    old = _branch_commit(repo, branch)
    _check_target_at(repo, stack, target, branch, new)
    if old and old != new and not git.is_ancestor(repo, old, new) and not rollback:
        raise InputError(f"--to {target}: {branch} is at {old[:12]}, which {new[:12]} does not contain: moving it would drop "
                         "commits (a rollback); pass --rollback to do it")
    if branch in git.checked_out_branches(repo) and old != new and not dry_run:
        raise InputError(f"--to {target}: {branch} is checked out in a work tree; switch that work tree to another branch first")
    before, after = _objects(repo, stack, target, old), _objects(repo, stack, target, new)
    sync = {target: EnvSync.of(envs[target])}
    review = Review(compare(before, after), Snapshot(before, sync), Snapshot(after, sync))
    moved = not dry_run and old != new
    if moved:
        git.move_branch(repo, branch, new, old, f"kfgen promote {source} -> {target}")
    return Promotion(source, target, branch, old, new, review, moved)


def _branch_commit(repo: Path, name: str) -> str | None:
    """The commit a revision of the stack names: a local branch, else origin's branch (the one `git fetch`
    brought), a tag, or a full commit id."""
    for ref in (f"refs/heads/{name}", f"refs/remotes/origin/{name}", f"refs/tags/{name}"):
        found = git.commit_of(repo, ref)
        if found:
            return found
    return git.commit_of(repo, name) if COMMIT.match(name) else None


def _tree(stack: Stack, *parts: str) -> str:
    return "/".join(p for p in (stack.gitops.repo_path, *parts) if p and p != ".")


def _check_target_at(repo: Path, stack: Stack, target: str, branch: str, commit: str) -> None:
    """The commit holds the target's render, and its Applications there follow the branch at paths that exist."""
    short = commit[:12]
    apps = _tree(stack, ARGOCD, target, ARGOCD_APPS)
    if git.object_type(repo, commit, apps) != "tree":
        raise InputError(f"{short}:{apps}: not there: {target} has no render at {short} ({git.subject(repo, commit)!r}); "
                         f"promote a commit whose render includes {target}")
    files = git.files_at(repo, commit, _tree(stack, ARGOCD, target))
    problems = []
    for name, data in sorted(files.items()):
        if not (name == ARGOCD_ROOT or name.startswith(ARGOCD_APPS + "/")):
            continue
        for o in load_all(data.decode("utf-8")):
            if not isinstance(o, dict) or o.get("kind") not in ("Application", "ApplicationSet"):
                continue
            spec = o["spec"]["template"]["spec"] if o["kind"] == "ApplicationSet" else o["spec"]
            source = spec.get("source") or {}
            where = f"{short}:{_tree(stack, ARGOCD, target, name)}"
            if source.get("targetRevision") != branch:
                problems.append(f"{where}: follows {source.get('targetRevision')!r}, not {branch!r}: at {short} {target} did not have "
                                "its own branch yet; promote a later commit")
            elif git.object_type(repo, commit, source.get("path", "")) != "tree":
                problems.append(f"{where}: its path {source.get('path')!r} is not a folder at {short}")
    if problems:
        raise InputError(problems)


def _objects(repo: Path, stack: Stack, env: str, commit: str | None) -> dict[str, dict]:
    """The environment's committed objects (hydrated and Argo CD) at a commit, by identity."""
    if commit is None:
        return {}
    objects = {}
    for folder in (_tree(stack, RENDERED, env), _tree(stack, ARGOCD, env)):
        for _, data in sorted(git.files_at(repo, commit, folder).items()):
            for o in load_all(data.decode("utf-8")):
                if isinstance(o, dict):
                    objects[identity(o)] = o
    return {env: objects}
