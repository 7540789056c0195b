"""Shared fixtures: in-process CLI runs, example stacks in tmp dirs, real git with a pinned identity."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from kfgen.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p.parent for p in (ROOT / "stacks").glob("*/stack.yaml"))
SHARED = ROOT.parent / "shared"


def pytest_addoption(parser):
    parser.addoption("--soak", type=int, default=0, metavar="N",
                     help="run the hardening tests' mutation corpus with N random mutants (a long soak; default: the quick corpus)")


@pytest.fixture(scope="session", autouse=True)
def kfgen_cache(tmp_path_factory):
    """kfgen's cache (engine versions, stat data of rendered trees) in a folder of this test session,
    never the user's ~/.cache: the tests start cold, and leave nothing behind."""
    folder = tmp_path_factory.mktemp("kfgen-cache")
    previous = os.environ.get("KFGEN_CACHE_DIR")
    os.environ["KFGEN_CACHE_DIR"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("KFGEN_CACHE_DIR", None)
    else:
        os.environ["KFGEN_CACHE_DIR"] = previous


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def kfgen(capsys):
    """Run the CLI in-process: kfgen("render", path) -> Run(code, out, err)."""

    def run(*args: object) -> Run:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


@pytest.fixture
def example(tmp_path) -> Path:
    """A copy of stacks/example in a tmp dir (the folder is self-contained); returns its stack.yaml."""
    return copy_stack("example", tmp_path)


def copy_stack(name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copytree(ROOT / "stacks" / name, target, ignore=shutil.ignore_patterns("deploy"))
    return target / "stack.yaml"


GIT_ENV = {
    "GIT_AUTHOR_NAME": "kfgen tests", "GIT_AUTHOR_EMAIL": "tests@kfgen.invalid",
    "GIT_COMMITTER_NAME": "kfgen tests", "GIT_COMMITTER_EMAIL": "tests@kfgen.invalid",
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
    "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
}


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, env={**os.environ, **GIT_ENV}, capture_output=True, text=True, check=True)
    return done.stdout


@pytest.fixture
def git_repo(tmp_path) -> Path:
    """An empty git repository with a pinned identity and dates."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    return repo


def edit(path: Path, old: str, new: str, count: int = 1) -> None:
    """Replace text in a file, asserting it was there (a test must not silently test nothing)."""
    text = path.read_text()
    assert text.count(old) >= count, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, count))


def leftovers(folder: Path, wait_seconds: float = 60) -> list[Path]:
    """kfgen's folders beside the outputs in `folder` (staging, replaced trees) once the background
    removals of replaced trees have finished (a render answers first, then its tree goes)."""
    deadline = time.monotonic() + wait_seconds
    while (found := sorted(folder.glob(".*.kfgen-*"))) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def read_tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def committed_example(repo: Path, folder: str, kfgen) -> Path:
    """The example stack in `repo/folder` (the repository root when ''), rendered and committed; its stack.yaml."""
    target = repo / folder if folder else repo
    shutil.copytree(ROOT / "stacks" / "example", target, ignore=shutil.ignore_patterns("deploy"), dirs_exist_ok=True)
    stack = target / "stack.yaml"
    assert kfgen("render", stack).code == 0
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "platform")
    return stack


def kind_environment(name: str, settings: str = "") -> str:
    """Stack text of one more environment of the example on kind, with CPUs only (as the example's dev),
    indented to go under spec.environments; `settings` are extra lines of it, e.g. `sync: {...}`."""
    extra = "".join(f"      {line}\n" for line in settings.splitlines())
    return (f"    {name}:\n      cloud: kind\n{extra}"
            '      artifacts: {bucket: ml-artifacts, endpoint: "minio.minio.svc:9000", insecure: true, credentialsSecret: minio-credentials}\n'
            "      overrides:\n        workloads:\n          training: {iris: {accelerator: null}}\n"
            '          serving: {iris: {accelerator: null, modelUri: "s3://ml-models/iris", credentialsSecret: minio-credentials}}\n'
            "          pipelines: {iris-classic: {schedule: null, steps: {train: {accelerator: null}}}}\n"
            "          notebooks: {tensorflow-gpu: {enabled: false}}\n")
