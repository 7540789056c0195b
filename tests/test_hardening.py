"""Every input path under stress: a seeded mutation corpus from the examples, two renders at
once, renders killed mid-way, symlinks in the output."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import copy_stack, leftovers, read_tree

from kfgen.load import load_bytes
from kfgen.yamlio import dump

pytestmark = pytest.mark.kustomize  # end to end: renders with the real kustomize

LOCATED = re.compile(r"^\S+:\d+:\d+: ")
QUICK_CORPUS = 70  # random mutants per CI run; `pytest tests/test_hardening.py --soak 5000` for a long soak

# What a hostile (or careless) pull request to the example stack would write: each must be refused (exit 2).
ATTACKS = [
    ("dummy hub login", "        type: github\n", "        type: dummy\n"),
    ("hub open to every account", "        admins: [platform-oncall]\n", "        admins: [platform-oncall]\n        allowAll: true\n"),
    ("argo server hands out its token", "      namespace: argo\n", "      namespace: argo\n      server: {authModes: [server]}\n"),
    ("external without TLS", "      tlsSecret: ml-acme-example-tls\n", ""),
    ("external routes without auth", "        service: oauth2-proxy.oauth2-proxy:4180\n", "        service: null\n"),
    ("a model takes every route", "        server: TENSORFLOW_SERVER\n", "        server: TENSORFLOW_SERVER\n        route: {prefix: /}\n"),
    ("a model takes the hub's route", "        server: TENSORFLOW_SERVER\n", "        server: TENSORFLOW_SERVER\n        route: {prefix: /notebooks/}\n"),
    ("a component in kube-system", "      namespace: kubeflow\n", "      namespace: kube-system\n"),
    ("workloads in Argo CD's namespace", "    namespace: ml\n", "    namespace: argocd\n"),
    ("a device as a manifest", "      namespace: kubeflow\n", "      namespace: kubeflow\n      extraResources: [/dev/zero]\n"),
    ("a file outside the repository", "      namespace: kubeflow\n", "      namespace: kubeflow\n      extraResources: [../../../../../etc/passwd]\n"),
    ("nesting bomb", "  workloads:\n", "  x: " + "[" * 3000 + "]" * 3000 + "\n  workloads:\n"),
    ("text bomb", "metadata:\n", "x0: &x0 '" + "x" * 100_000 + "'\nx1: [" + ", ".join(["*x0"] * 200) + "]\nmetadata:\n"),
    ("an explicit tag that is no integer", "      replicas: 2\n", "      replicas: !!int two\n"),
]


def mutants(text: str, seed: int, count: int) -> list[tuple[str, str]]:
    """(what, text) pairs: the mutations a hurried edit or a hostile file makes."""
    rng = random.Random(seed)
    lines = text.splitlines(keepends=True)
    data = load_bytes(text.encode(), "x").data
    paths = []

    def walk(node, path):
        if isinstance(node, dict):
            for k, v in node.items():
                paths.append(path + (k,))
                walk(v, path + (k,))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                paths.append(path + (i,))
                walk(v, path + (i,))

    walk(data, ())
    found = []
    for n in range(count):
        kind = rng.choice(["delete-line", "truncate", "wrong-type", "bad-name", "duplicate", "tab", "bomb", "tag", "delete-key", "swap-lines"])
        if kind == "delete-line":
            i = rng.randrange(len(lines))
            found.append((f"{kind} {i + 1}", "".join(lines[:i] + lines[i + 1:])))
        elif kind == "truncate":
            cut = rng.randrange(1, len(text))
            found.append((f"{kind} at {cut}", text[:cut]))
        elif kind == "duplicate":
            i = rng.randrange(len(lines))
            found.append((f"{kind} line {i + 1}", "".join(lines[: i + 1] + [lines[i]] + lines[i + 1:])))
        elif kind == "tab":
            i = rng.randrange(len(lines))
            found.append((f"{kind} line {i + 1}", "".join(lines[:i] + ["\t" + lines[i]] + lines[i + 1:])))
        elif kind == "bomb":
            bomb = "x0: &x0 [a, a, a, a, a, a, a, a, a, a]\n" + "".join(
                f"x{i}: &x{i} [{', '.join([f'*x{i - 1}'] * 10)}]\n" for i in range(1, 9))
            found.append((kind, bomb + text))
        elif kind == "tag":
            i = rng.randrange(len(lines))
            found.append((f"{kind} line {i + 1}", "".join(lines[:i] + [re.sub(r": (\S)", r": !!python/object:os.system \1", lines[i], 1)] + lines[i + 1:])))
        elif kind == "swap-lines":
            i = rng.randrange(len(lines) - 1)
            found.append((f"{kind} {i + 1}", "".join(lines[:i] + [lines[i + 1], lines[i]] + lines[i + 2:])))
        else:
            path = rng.choice(paths)
            mutated = _mutate(data, path, kind, rng)
            found.append((f"{kind} {'.'.join(map(str, path))}", dump(mutated)))
    return found


def _mutate(data, path, kind, rng):
    import copy

    data = copy.deepcopy(data)
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if kind == "delete-key":
        del parent[last]
    elif kind == "wrong-type":
        parent[last] = rng.choice([42, "text", ["a"], {"k": "v"}, None, True, -1.5])
    elif kind == "bad-name" and isinstance(parent, dict):
        parent[rng.choice(["../../x", "A_B", "-lead", "x" * 70, "a/b"])] = parent.pop(last)
    return data


def attacks(text: str) -> list[tuple[str, str]]:
    found = []
    for what, old, new in ATTACKS:
        assert old in text, what  # the attack still applies to the example
        found.append((f"attack: {what}", text.replace(old, new, 1)))
    return found


def test_mutation_corpus_never_crashes_and_never_touches_the_output(kfgen, tmp_path, request):
    stack = copy_stack("example", tmp_path)
    original = stack.read_text()
    out = tmp_path / "out"
    assert kfgen("render", stack, "--out", out).code == 0
    snapshot = read_tree(out)
    codes = {}
    soak = request.config.getoption("--soak")
    for what, text in attacks(original) + mutants(original, seed=soak or 20261124, count=soak or QUICK_CORPUS):
        stack.write_text(text)
        run = kfgen("render", stack, "--out", out)
        codes[run.code] = codes.get(run.code, 0) + 1
        assert run.code in ((2,) if what.startswith("attack:") else (0, 2)), f"{what}: exit {run.code}\n{run.err}"
        assert "Traceback" not in run.err, what
        if run.code == 2:
            lines = run.err.splitlines()
            assert lines and all(LOCATED.match(line) for line in lines), f"{what}:\n{run.err}"
            assert all(line.startswith(str(stack)) for line in lines) or what.startswith("attack:"), f"{what}:\n{run.err}"
            assert read_tree(out) == snapshot, what
        else:
            snapshot = read_tree(out)
    assert codes.get(2, 0) > 40 and codes.get(0, 0) > 3, codes  # the corpus exercises both sides


def test_a_bomb_is_refused_fast(kfgen, tmp_path):
    bomb = tmp_path / "stack.yaml"
    bomb.write_text("a: &a ['lol','lol','lol','lol','lol','lol','lol','lol','lol']\n" + "".join(
        f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi")))
    start = time.perf_counter()
    run = kfgen("validate", bomb)
    assert time.perf_counter() - start < 3
    assert run.code == 2 and "expands to more than 200000 nodes (aliases); refused" in run.err


def render_process(stack: Path, out: Path, **env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "kfgen", "render", str(stack), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **env})


def test_two_renders_at_once_are_serialized_never_mixed(tmp_path):
    first = copy_stack("example", tmp_path / "a")
    second = copy_stack("example", tmp_path / "b")
    second.write_text(second.read_text().replace("args: [--steps, \"200\"]", "args: [--steps, \"999\"]"))
    out = tmp_path / "out"
    expected = {}
    for name, stack in (("a", first), ("b", second)):
        assert render_process(stack, tmp_path / f"alone-{name}").wait() == 0
        expected[name] = read_tree(tmp_path / f"alone-{name}")
    for _ in range(2):
        procs = [render_process(first, out), render_process(second, out)]
        results = [p.communicate(timeout=120) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], results
        assert read_tree(out) in (expected["a"], expected["b"])
    assert not leftovers(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "alone-a", "alone-b", "b", "out"]  # no lock file or staging left


@pytest.fixture
def slow_kustomize(tmp_path) -> Path:
    """The real kustomize engine, started late: time to interrupt a render while it hydrates."""
    from kfgen.kustomize import find_engine

    engine = find_engine()
    wrapper = tmp_path / "slow-kustomize"
    wrapper.write_text(f"#!/bin/sh\nif [ \"$1\" = version ]; then echo v{'.'.join(map(str, engine.version))}; exit 0; fi\n"
                       f"sleep 3\nshift\nexec {' '.join(engine.command)} \"$@\"\n")
    wrapper.chmod(0o755)
    return wrapper


def processes_running(needle: str) -> list[str]:
    """Command lines of this machine's processes that mention `needle`."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in text:
            found.append(text)
    return found


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_render_leaves_the_previous_output(kfgen, tmp_path, slow_kustomize, sig):
    stack = copy_stack("example", tmp_path)
    out = tmp_path / "out"
    assert kfgen("render", stack, "--out", out).code == 0
    before = read_tree(out)
    stack.write_text(stack.read_text().replace("args: [--steps, \"200\"]", "args: [--steps, \"999\"]"))
    proc = render_process(stack, out, KFGEN_KUSTOMIZE=str(slow_kustomize), PATH=os.environ["PATH"])
    deadline = time.time() + 30
    while not list(tmp_path.glob(".out.kfgen-new-*")) and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # inside the (slow) kustomize builds
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == {signal.SIGKILL: -9, signal.SIGINT: 130, signal.SIGTERM: 143}[sig], err
    if sig != signal.SIGKILL:
        assert err.strip() == ("kfgen: interrupted" if sig == signal.SIGINT else "kfgen: terminated")
        assert not list(tmp_path.glob(".out.kfgen-*"))  # cleaned up on the way out
        assert processes_running(str(tmp_path)) == []  # and no kustomize (or what it started) left running
    assert read_tree(out) == before
    assert kfgen("render", stack, "--out", out).code == 0  # and the next render recovers
    assert read_tree(out) != before and not leftovers(tmp_path)  # the replaced tree, removed after kfgen answered


def test_symlinks_in_the_output_are_not_followed(kfgen, tmp_path):
    stack = copy_stack("example", tmp_path)
    out = tmp_path / "out"
    assert kfgen("render", stack, "--out", out).code == 0
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    (out / "rendered" / "dev" / "link.yaml").symlink_to(outside)
    (out / "rendered" / "prod" / "dirlink").symlink_to(tmp_path, target_is_directory=True)
    run = kfgen("render", stack, "--out", out)  # kfgen wrote neither link: refused, and nothing behind them is read
    assert (run.code, run.err) == (2, f"{out}: holds files kfgen did not write (rendered/dev/link.yaml, rendered/prod/dirlink); "
                                      "a render would delete them: move them out of the folder, or choose another output folder\n")
    record = json.loads((out / "provenance.json").read_text())
    record["files"].update({"rendered/dev/link.yaml": "sha256:0", "rendered/prod/dirlink": "sha256:0"})
    (out / "provenance.json").write_text(json.dumps(record))  # a forged record: the links go, what they point at stays
    assert kfgen("render", stack, "--out", out).code == 0
    assert outside.read_text() == "keep me" and stack.is_file()
    assert not (out / "rendered" / "dev" / "link.yaml").exists() and not (out / "rendered" / "prod" / "dirlink").exists()


def test_an_output_folder_that_is_a_symlink_is_refused(kfgen, tmp_path):
    stack = copy_stack("example", tmp_path)
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    run = kfgen("render", stack, "--out", tmp_path / "link")
    assert (run.code, run.err) == (2, f"{tmp_path / 'link'}: is a symlink; give the real folder as --out\n")
