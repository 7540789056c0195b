"""A render that keeps what the previous render proves unchanged (files, hydrated environments, and
environments' plans kept in kfgen's cache) writes exactly the bytes of a render into an empty folder: over a seeded series of random edits of the stack, of the output folder (hand
edits, deleted files) and of kfgen's cache (garbage), with the real kustomize."""

from __future__ import annotations

import copy
import os
import random
import sys
from pathlib import Path

import pytest

from conftest import ROOT, read_tree
from kfgen.cache import cache_dir
from kfgen.load import load_bytes
from kfgen.render import render
from kfgen.yamlio import dump

sys.path.insert(0, str(ROOT / "bench"))
from stacks import environments_stack  # noqa: E402

pytestmark = pytest.mark.kustomize  # end to end: renders with the real kustomize

KINDS = ["bucket", "replicas", "sync", "image", "stack-replicas", "add-env", "drop-env", "hand-edit", "delete-file", "garbage-cache",
         "nothing"]


def test_incremental_and_full_renders_are_byte_identical(tmp_path):
    stack = environments_stack(tmp_path / "stack", 4)
    rng = random.Random(20261125)
    series = ["first render", *rng.sample(KINDS, len(KINDS)), *rng.sample(KINDS, len(KINDS))]  # every kind, twice, in a random order
    out = tmp_path / "out"
    kept = built = 0
    done = []
    for step, kind in enumerate(series):
        what = _edit(stack, out, kind, rng) if step else kind
        done.append(what)
        result = render(stack, out)
        cold = render(stack, tmp_path / f"cold-{step}", reuse=False, remember=False)  # every environment planned and built
        assert read_tree(out) == read_tree(cold.out), f"step {step}: {what} (after {done[:-1]})"
        kept += len(result.reused)
        built += len(result.objects) - len(result.reused)
    assert kept >= 10 and built >= 10, (kept, built, done)  # the series kept environments and rebuilt others


def _edit(stack: Path, out: Path, kind: str, rng: random.Random) -> str:
    """One random change: to the stack (one environment, all of them, the environments themselves), to
    the output folder behind kfgen's back, or to kfgen's cache."""
    data = load_bytes(stack.read_bytes(), "stack.yaml").data
    envs = data["spec"]["environments"]
    name = rng.choice(sorted(envs))
    env = envs[name]
    if kind == "bucket":
        env["artifacts"]["bucket"] = f"bucket-{rng.randrange(100)}"
    elif kind == "replicas":
        env.setdefault("overrides", {}).setdefault("components", {}).setdefault("seldon-core", {})["replicas"] = rng.randrange(1, 4)
    elif kind == "sync":  # the environment's Argo CD objects only
        env["sync"] = {"automated": not (env.get("sync") or {}).get("automated", False)}
    elif kind == "image":
        data["spec"]["workloads"]["training"]["iris"]["image"] = f"ghcr.io/acme/iris-trainer:0.1.{rng.randrange(100)}"
    elif kind == "stack-replicas":
        data["spec"]["components"]["seldon-core"]["replicas"] = rng.randrange(1, 4)
    elif kind == "add-env":
        envs[f"extra-{rng.randrange(1000)}"] = copy.deepcopy(env)
    elif kind == "drop-env" and len(envs) > 2:
        del envs[name]
    elif kind == "hand-edit" and out.is_dir():
        file = rng.choice(sorted((out / "rendered").rglob("*.yaml")))
        file.write_text(file.read_text().replace("kfgen", "kfgEn", 1) + "# edited\n")
        return f"{kind} {file.relative_to(out)}"
    elif kind == "delete-file" and out.is_dir():
        file = rng.choice(sorted((out / "rendered").rglob("*.yaml")))
        file.unlink()
        return f"{kind} {file.relative_to(out)}"
    elif kind == "garbage-cache":
        folder = cache_dir()
        assert folder is not None
        for file in folder.rglob("*.json"):
            file.write_bytes(os.urandom(64) if rng.random() < 0.5 else file.read_bytes()[:-7] + b"garbage")
        return kind
    else:
        return "nothing"
    stack.write_text(dump(data))
    return f"{kind} {name}"
