"""The render pipeline: load -> validate -> plan -> write -> hydrate -> lint -> swap, timed by stage.

A render into a folder that holds an earlier render keeps what it can prove unchanged (by digest,
against that render's sealed record): files whose bytes are the same are hard-linked rather than
written, and environments whose kustomize inputs are the same keep their hydrated files without
running kustomize (kfgen.hydrate). The result is byte for byte the one a render into an empty
folder gives; a test holds the two to it over a seeded series of edits.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from kfgen.digests import FileDigests, scan
from kfgen.errors import EXIT_FINDINGS, KfgenError
from kfgen.build_failure import explain_build_failure
from kfgen.hydrate import hydrate, hydration_keys
from kfgen.kustomize import BuildError, Engine, find_engine
from kfgen.lint import Violation
from kfgen.model import Stack
from kfgen.plan_memo import PlanMemo
from kfgen.record import PreviousTree, record_text
from kfgen.sources import Sources, read_sources
from kfgen.validate import validate
from kfgen.vocabulary import PROVENANCE
from kfgen.writer import OutputError, Retired, TreeOutput, check_owned, exchange_in, locked, new_staging


class LintFailed(KfgenError):
    """The rendered objects break a schema or a policy; nothing was written."""

    exit_code = EXIT_FINDINGS

    def __init__(self, violations: list[Violation]):
        self.violations = violations
        super().__init__(f"{len(violations)} violations")

    def lines(self) -> list[str]:
        return [str(v) for v in self.violations] + [f"render stopped: {len(self.violations)} violations; the output folder is unchanged"]


@dataclass
class RenderResult:
    out: Path
    stack: Stack
    objects: dict[str, int] = field(default_factory=dict)  # per environment
    seconds: dict[str, float] = field(default_factory=dict)  # per stage, and `total` (wall time of the whole render)
    reused: list[str] = field(default_factory=list)  # environments whose hydrated files were kept
    retired: Retired | None = None  # the previous tree, still to remove (render(..., remove_previous=False))


def load_stack(stack_path: Path, display: str | None = None, allow_outside: bool = False) -> Stack:
    """The validated stack (InputError with every problem otherwise), exactly as render validates it."""
    return validate(read_sources(stack_path, display, allow_outside, collect=True))[0]


def default_out(stack_path: Path, stack: Stack) -> Path:
    """--out defaults to spec.gitops.path next to the stack file."""
    return stack_path.parent / stack.gitops.path


def render(stack_path: Path, out: Path | None = None, *, display: str | None = None, kustomize: str | None = None,
           allow_outside: bool = False, progress: Callable[[str], None] | None = None, repo: Path | None = None,
           reuse: bool = True, remember: bool = True, remove_previous: bool = True) -> RenderResult:
    """Render the stack into `out`; on any failure the previous `out` is left exactly as it was. `repo`: the
    repository root, for a stack copied out of its repository (see read_sources). `reuse`: keep what the
    previous render in `out` proves unchanged (off: every environment planned and built, every file written).
    `remember`: keep the written files' stat data and the environments' plans in kfgen's cache (off for a
    throwaway folder or stack).
    `remove_previous`: off, the replaced tree is left to the caller (`result.retired`), set aside and
    locked, so that it can be removed after kfgen has answered."""
    timer = Timer()
    sources = timer.run("load", lambda: read_sources(stack_path, display, allow_outside, repo, collect=True))
    memo = PlanMemo(stack_path, recall=reuse) if remember else None
    stack, tree = timer.run("validate", validate, sources, memo)  # validation includes the (pure) plan
    if memo is not None:
        timer.run("validate", memo.save)
    out = out or default_out(stack_path, stack)
    engine = timer.run("engine", find_engine, kustomize)
    result = RenderResult(out, stack)
    try:
        _write(out, sources, stack, tree, engine, timer, result, progress, reuse, remember)
        if result.retired and remove_previous:
            timer.run("cleanup", result.retired.remove)
            result.retired = None
    except OSError as exc:
        raise OutputError(out, exc) from None
    result.seconds = timer.finish()
    return result


def _write(out: Path, sources: Sources, stack: Stack, tree: dict[str, str], engine: Engine, timer: Timer, result: RenderResult,
           progress: Callable[[str], None] | None, reuse: bool, remember: bool) -> None:
    """Write, hydrate, lint and swap in: the edge of the render that touches the output folder."""
    with locked(out):
        found, record = timer.run("own", check_owned, out, sources.stack_dir, sources.inputs)
        previous = PreviousTree(out, record, found) if record and reuse else None
        staging = new_staging(out)
        output = None
        try:
            output = TreeOutput(staging, previous)
            timer.run("write", lambda: [output.put(path, text) for path, text in tree.items()])
            envs = [env.name for env in stack.environments]
            keys = timer.run("keys", hydration_keys, tree, envs, engine.identity, stack.kubernetes_version)
            try:
                hydrated = timer.run("hydrate", hydrate, engine, envs, keys, output, stack.kubernetes_version, lambda built: staging,
                                     previous, progress)
            except BuildError as failure:  # a patch of yours kustomize cannot apply is bad input, at its entry in the stack
                raise explain_build_failure(failure, stack, tree, engine, sources.doc, staging) from None
            result.objects, result.reused = hydrated.objects, hydrated.reused
            if hydrated.violations:
                raise LintFailed(hydrated.violations)
            text = timer.run("record", record_text, stack, engine.identity, {env: keys[env] for env in envs if env in keys}, output.files)
            timer.run("record", output.put, PROVENANCE, text)
            output.close()
            old = timer.run("swap", exchange_in, staging, out)
        except BaseException:
            if output:
                output.close()
            shutil.rmtree(staging, ignore_errors=True)
            raise
        if old:
            result.retired = timer.run("swap", Retired, old)
        if remember:
            timer.run("index", _remember, out, output)


def _remember(out: Path, output: TreeOutput) -> None:
    """Keep the stat data of every file just written in kfgen's cache, so the next check or render
    proves them unchanged without reading them (kfgen.digests)."""
    digests = FileDigests(out, remembered=False)
    for path, info in scan(out).items():
        digest = output.files.get(path)
        if digest and (info.st_ino, info.st_size, info.st_mtime_ns) == output.stamps.get(path):
            digests.remember(path, digest, info)
    digests.save(complete=True)


class Timer:
    """Wall time per stage; `total` is the whole render, and `other` what no stage covers."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.seconds: dict[str, float] = {}

    def run(self, stage: str, fn, *args):
        start = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start

    def finish(self) -> dict[str, float]:
        total = time.perf_counter() - self.start
        return {**self.seconds, "other": max(0.0, total - sum(self.seconds.values())), "total": total}
