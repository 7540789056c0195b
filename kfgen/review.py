"""The review loop: is the committed render what a fresh render gives (check), and what does a
change to the stack change in the hydrated objects (diff)? Both render with the real pipeline;
neither re-implements rendering."""

from __future__ import annotations

import difflib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from kfgen import git
from kfgen.envpatch import identity
from kfgen.errors import InputError
from kfgen.render import default_out, render
from kfgen.rendered import rendered_objects
from kfgen.yamlio import dump

MARKDOWN_LIMIT = 65_000


# --- check ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Drift:
    path: str  # relative to the output folder
    reason: str  # changed | missing | unexpected


def check(stack_path: Path, out: Path | None = None, *, display: str | None = None, kustomize: str | None = None,
          allow_outside: bool = False) -> tuple[Path, list[Drift]]:
    """(the output folder, files where it differs from a fresh render of the stack)."""
    with tempfile.TemporaryDirectory(prefix="kfgen-check-") as tmp:
        fresh = render(stack_path, Path(tmp) / "out", display=display, kustomize=kustomize, allow_outside=allow_outside)
        out = out or default_out(stack_path, fresh.stack)
        expected, actual = _files(fresh.out), _files(out)
    drift = [Drift(p, "changed") for p in sorted(set(expected) & set(actual)) if expected[p] != actual[p]]
    drift += [Drift(p, "missing") for p in sorted(set(expected) - set(actual))]
    drift += [Drift(p, "unexpected") for p in sorted(set(actual) - set(expected))]
    return out, sorted(drift, key=lambda d: d.path)


def _files(root: Path) -> dict[str, bytes]:
    if not root.is_dir():
        return {}
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file() and not p.is_symlink()}


# --- diff -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Change:
    env: str
    api_version: str
    kind: str
    namespace: str
    name: str
    change: str  # added | removed | changed
    diff: str

    def as_json(self) -> dict:
        return {"env": self.env, "apiVersion": self.api_version, "kind": self.kind, "namespace": self.namespace,
                "name": self.name, "change": self.change, "diff": self.diff}

    @property
    def title(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"


def diff(stack_path: Path, base_ref: str, *, display: str | None = None, kustomize: str | None = None) -> list[Change]:
    """Changes to the hydrated objects between the stack at `base_ref` and the stack now."""
    stack_path = stack_path.resolve()
    repo = git.toplevel(stack_path.parent)
    commit = git.resolve(repo, base_ref)
    relative = stack_path.relative_to(repo)
    with tempfile.TemporaryDirectory(prefix="kfgen-diff-") as tmp:
        tmp_path = Path(tmp)
        new = render(stack_path, tmp_path / "new", display=display, kustomize=kustomize, allow_outside=True)
        output = default_out(stack_path, new.stack).resolve()
        excluded = [str(output.relative_to(repo))] if output.is_relative_to(repo) else []
        git.extract(repo, commit, tmp_path / "base-src", excluded)
        old_stack = tmp_path / "base-src" / relative
        old = {}
        if old_stack.is_file():
            try:
                old_out = render(old_stack, tmp_path / "old", display=f"{base_ref}:{relative}", kustomize=kustomize,
                                 allow_outside=True).out
            except InputError as exc:
                raise InputError([f"the stack at {base_ref} does not validate with this kfgen:", *exc.lines()]) from None
            old = _objects(old_out)
        return compare(old, _objects(new.out))


def _objects(out: Path) -> dict[str, dict[tuple, dict]]:
    """Rendered objects per environment, by identity."""
    return {env.name: {identity(o): o for o in rendered_objects(out, env.name)} for env in sorted((out / "rendered").iterdir())}


def compare(old: dict[str, dict[tuple, dict]], new: dict[str, dict[tuple, dict]]) -> list[Change]:
    """Added, removed and changed objects per environment and identity, in a stable order."""
    changes = []
    for env in sorted(set(old) | set(new)):
        before, after = old.get(env, {}), new.get(env, {})
        for key in sorted(set(before) | set(after)):
            a, b = before.get(key), after.get(key)
            if a == b:
                continue
            kind = "added" if a is None else "removed" if b is None else "changed"
            label = f"{env}/{key[1]}/{key[2] + '/' if key[2] else ''}{key[3]}"
            text = "".join(difflib.unified_diff(dump(a).splitlines(True) if a else [], dump(b).splitlines(True) if b else [],
                                                f"a/{label}", f"b/{label}", n=5))
            api_version, kind_name, namespace, name = key
            changes.append(Change(env, api_version, kind_name, namespace, name, kind, text))
    return changes


def summary(changes: list[Change], envs: list[str] | None = None) -> dict:
    per_env: dict[str, dict[str, int]] = {env: {"added": 0, "removed": 0, "changed": 0} for env in envs or []}
    for c in changes:
        per_env.setdefault(c.env, {"added": 0, "removed": 0, "changed": 0})[c.change] += 1
    totals = {k: sum(v[k] for v in per_env.values()) for k in ("added", "removed", "changed")}
    return {"environments": dict(sorted(per_env.items())), **totals}


def as_json(changes: list[Change]) -> str:
    return json.dumps({"changes": [c.as_json() for c in changes], "summary": summary(changes)}, indent=2) + "\n"


def as_text(changes: list[Change]) -> str:
    if not changes:
        return "no changes to the rendered objects\n"
    s = summary(changes)
    lines = [f"{s['added']} added, {s['removed']} removed, {s['changed']} changed"]
    lines += [f"  {c.change:8} {c.env}: {c.title}" for c in changes]
    return "\n".join(lines) + "\n\n" + "".join(c.diff for c in changes)


def as_markdown(changes: list[Change], stack: str, base_ref: str, limit: int = MARKDOWN_LIMIT) -> str:
    """A pull-request comment: a summary table per environment, then a collapsible section per
    object; cut with a clear note to stay under `limit` characters."""
    s = summary(changes)
    head = [f"### kfgen diff of `{stack}` against `{base_ref}`", ""]
    if not changes:
        return "\n".join(head + ["No changes to the rendered objects."]) + "\n"
    head += ["| environment | added | removed | changed |", "|---|---:|---:|---:|"]
    head += [f"| {env} | {n['added']} | {n['removed']} | {n['changed']} |" for env, n in s["environments"].items()]
    head.append("")
    text = "\n".join(head) + "\n"
    sections = [f"<details><summary>{c.change}: <code>{c.env}</code> {c.title}</summary>\n\n```diff\n{c.diff}```\n</details>\n\n"
                for c in changes]
    reserve = 300  # room for the note
    for shown, section in enumerate(sections):
        if len(text) + len(section) > limit - reserve:
            rest = len(sections) - shown
            return text + (f"**Cut:** {rest} more of {len(sections)} changed objects are not shown here (a comment holds "
                           f"{limit:,} characters). Run `kfgen diff {stack} --base {base_ref}` for all of them.\n")
        text += section
    return text
