"""Reading objects back from a rendered tree (the committed one, or a fresh render)."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from kfgen.errors import InputError
from kfgen.model import Stack
from kfgen.render import default_out, load_stack, render
from kfgen.vocabulary import PROVENANCE, RENDERED
from kfgen.yamlio import load_all


def rendered_objects(out: Path, env: str) -> list[dict]:
    folder = out / RENDERED / env
    if not folder.is_dir():
        raise InputError(f"{out}: no rendered environment {env!r}")
    return [o for f in sorted(folder.rglob("*.yaml")) if not f.is_symlink() for o in load_all(f.read_text()) if isinstance(o, dict)]


@dataclass(frozen=True)
class RenderedStack:
    """A stack and its hydrated objects per environment, and where they were read from."""

    stack: Stack
    objects: dict[str, list[dict]]
    fresh: bool  # rendered afresh into a temporary folder (no committed render of this stack)
    stale: bool  # a committed render exists but was rendered from another version of the stack


def choose_environment(stack: Stack, name: str | None) -> str:
    """The environment named, or the stack's only one; InputError otherwise."""
    names = [e.name for e in stack.environments]
    if name is None:
        if len(names) == 1:
            return names[0]
        raise InputError(f"--env is required: the stack has environments {', '.join(names)}")
    if name not in names:
        raise InputError(f"no environment {name!r} (have: {', '.join(names)})")
    return name


def read_rendered(stack_path: Path, out: Path | None = None, stack: Stack | None = None) -> RenderedStack:
    """Every environment's objects: from `out` when given (what is deployed, hand edits included), from
    the committed render when it is the render of this stack (same stack digest in provenance.json),
    else from a fresh render in a temporary folder."""
    stack = stack or load_stack(stack_path, str(stack_path))
    names = [e.name for e in stack.environments]
    committed = out or default_out(stack_path, stack)
    present = all((committed / RENDERED / name).is_dir() for name in names)
    stale = present and out is None and _stack_digest(committed) != f"sha256:{stack.digest}"
    if present and not stale:
        return RenderedStack(stack, {name: rendered_objects(committed, name) for name in names}, False, False)
    with tempfile.TemporaryDirectory(prefix="kfgen-") as tmp:
        fresh = render(stack_path, Path(tmp) / "out", display=str(stack_path)).out
        return RenderedStack(stack, {name: rendered_objects(fresh, name) for name in names}, True, stale)


def _stack_digest(out: Path) -> str | None:
    try:
        return json.loads((out / PROVENANCE).read_text()).get("stackDigest")
    except (OSError, ValueError, AttributeError):
        return None


def find_object(objects: list[dict], kind: str, name: str, env: str) -> dict:
    """The one object of `kind` named `name` (any namespace); InputError naming the others."""
    found = {o["metadata"]["name"]: o for o in objects if o.get("kind") == kind}
    if name not in found:
        raise InputError(f"no {kind} {name!r} rendered for environment {env!r} (have: {', '.join(sorted(found)) or 'none'})")
    return found[name]


def operator_cluster_domain(objects: list[dict]) -> str | None:
    """CUSTOM_CLUSTER_DOMAIN of the rendered training operator, which the hosts in TF_CONFIG carry."""
    for o in objects:
        if o.get("kind") == "Deployment" and o["metadata"]["name"] == "training-operator":
            for container in o["spec"]["template"]["spec"]["containers"]:
                for var in container.get("env", []):
                    if var.get("name") == "CUSTOM_CLUSTER_DOMAIN":
                        return var.get("value")
    return None
