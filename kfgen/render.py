"""The render pipeline: load -> validate -> plan -> write -> hydrate -> swap, timed by stage."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from kfgen.errors import EXIT_FINDINGS, KfgenError
from kfgen.build_failure import explain_build_failure
from kfgen.kustomize import BuildError, Engine, find_engine
from kfgen.lint import Violation, lint_objects
from kfgen.model import Stack
from kfgen.plan import provenance
from kfgen.sources import Sources, read_sources
from kfgen.split import split_rendered
from kfgen.validate import validate
from kfgen.vocabulary import PROVENANCE
from kfgen.writer import OutputError, check_owned, locked, new_staging, swap_in, write_tree
from kfgen.yamlio import dump


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
    seconds: dict[str, float] = field(default_factory=dict)  # per stage


def load_stack(stack_path: Path, display: str | None = None, allow_outside: bool = False) -> Stack:
    """The validated stack (InputError with every problem otherwise), exactly as render validates it."""
    return validate(read_sources(stack_path, display, allow_outside, collect=True))[0]


def default_out(stack_path: Path, stack: Stack) -> Path:
    """--out defaults to spec.gitops.path next to the stack file."""
    return stack_path.parent / stack.gitops.path


def render(stack_path: Path, out: Path | None = None, *, display: str | None = None, kustomize: str | None = None,
           allow_outside: bool = False, progress: Callable[[str], None] | None = None, repo: Path | None = None) -> RenderResult:
    """Render the stack into `out`; on any failure the previous `out` is left exactly as it was. `repo`: the
    repository root, for a stack copied out of its repository (see read_sources)."""
    timer = _Timer()
    sources = timer.run("load", lambda: read_sources(stack_path, display, allow_outside, repo, collect=True))
    stack, tree = timer.run("validate", validate, sources)  # validation includes the (pure) plan
    out = out or default_out(stack_path, stack)
    engine = timer.run("engine", find_engine, kustomize)
    result = RenderResult(out, stack)
    try:
        _write(out, sources, stack, tree, engine, timer, result, progress)
    except OSError as exc:
        raise OutputError(out, exc) from None
    result.seconds = timer.seconds
    return result


def _write(out: Path, sources: Sources, stack: Stack, tree: dict[str, str], engine: Engine, timer: _Timer, result: RenderResult,
           progress: Callable[[str], None] | None) -> None:
    """Write, hydrate, lint and swap in: the edge of the render that touches the output folder."""
    with locked(out):
        check_owned(out, sources.stack_dir, sources.inputs)
        staging = new_staging(out)
        try:
            timer.run("write", write_tree, staging, tree)
            envs = [env.name for env in stack.environments]

            def built(folder: Path) -> None:
                if progress:
                    progress(folder.name)

            try:
                streams = timer.run("hydrate", engine.build_all, [staging / "envs" / name for name in envs], built)
            except BuildError as failure:  # a patch of yours kustomize cannot apply is bad input, at its entry in the stack
                raise explain_build_failure(failure, stack, tree, engine, sources.doc, staging) from None
            rendered: dict[str, dict] = {}
            for name, stream in zip(envs, streams):
                files = split_rendered(name, stream)
                result.objects[name] = len(files)
                rendered.update(files)
            # CRDs of components installed outside kfgen live in the cluster: `kfgen lint --crds` checks those
            violations = timer.run("lint", lint_objects, list(rendered.items()), stack.kubernetes_version, [], True)
            if violations:
                raise LintFailed(violations)
            hydrated = {path: dump(obj) for path, obj in rendered.items()}
            timer.run("split", write_tree, staging, hydrated)
            write_tree(staging, {PROVENANCE: provenance(stack, {**tree, **hydrated})})
            timer.run("swap", swap_in, staging, out)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise


class _Timer:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def run(self, stage: str, fn, *args):
        start = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start
