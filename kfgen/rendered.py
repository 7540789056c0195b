"""Reading objects back from a rendered tree (the committed one, or a fresh render)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from kfgen.errors import InputError
from kfgen.render import default_out, load_stack, render
from kfgen.yamlio import load_all


def rendered_objects(out: Path, env: str) -> list[dict]:
    folder = out / "rendered" / env
    if not folder.is_dir():
        raise InputError(f"{out}: no rendered environment {env!r}")
    return [o for f in sorted(folder.rglob("*.yaml")) if not f.is_symlink() for o in load_all(f.read_text()) if isinstance(o, dict)]


def rendered_tfjob(stack_path: Path, env: str, job: str, out: Path | None = None) -> tuple[dict, str | None]:
    """(the TFJob as rendered for `env`, the operator's CUSTOM_CLUSTER_DOMAIN if it sets one).
    Reads the committed render when it exists, else renders the stack afresh."""
    stack = load_stack(stack_path, str(stack_path))
    if env not in [e.name for e in stack.environments]:
        raise InputError(f"no environment {env!r} (have: {', '.join(e.name for e in stack.environments)})")
    out = out or default_out(stack_path, stack)
    if (out / "rendered" / env).is_dir():
        objects = rendered_objects(out, env)
    else:
        with tempfile.TemporaryDirectory(prefix="kfgen-") as tmp:
            objects = rendered_objects(render(stack_path, Path(tmp) / "out", display=str(stack_path)).out, env)
    jobs = {o["metadata"]["name"]: o for o in objects if o.get("kind") == "TFJob"}
    if job not in jobs:
        raise InputError(f"no TFJob {job!r} rendered for environment {env!r} (have: {', '.join(sorted(jobs)) or 'none'})")
    domain = None
    for o in objects:
        if o.get("kind") == "Deployment" and o["metadata"]["name"] == "training-operator":
            for container in o["spec"]["template"]["spec"]["containers"]:
                for var in container.get("env", []):
                    if var.get("name") == "CUSTOM_CLUSTER_DOMAIN":
                        domain = var.get("value")
    return jobs[job], domain
