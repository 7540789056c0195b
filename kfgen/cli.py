"""The command line. One error edge: expected errors print one line each and exit with their
code (2 bad input, 3 outside tool); anything unexpected is a bug and says so (exit 70)."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path

import click

from kfgen import __version__
from kfgen.completion import add_completions
from kfgen.errors import EXIT_FINDINGS, EXIT_INPUT, EXIT_OK, InputError, KfgenError, MissingExtraError
from kfgen.shipped import template_path

EXIT_BUG = 70


_started = [time.perf_counter()]  # when this process (or the last in-process run) started: the times kfgen reports


def main(argv: list[str] | None = None) -> int:
    """Run kfgen; returns the exit code (the console script raises SystemExit with it)."""
    if argv is not None:
        _started.append(time.perf_counter())
    previous = signal.signal(signal.SIGTERM, _terminated) if threading.current_thread() is threading.main_thread() else None
    try:
        result = cli.main(args=argv, prog_name="kfgen", standalone_mode=False)
        return result if isinstance(result, int) else EXIT_OK
    except KfgenError as exc:
        for line in exc.lines():
            click.echo(line, err=True)
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return EXIT_INPUT
    except Terminated:
        click.echo("kfgen: terminated", err=True)
        return 143
    except (KeyboardInterrupt, click.exceptions.Abort):
        click.echo("kfgen: interrupted", err=True)
        return 130
    except Exception as exc:  # a bug: say so in one line, details on request
        if os.environ.get("KFGEN_DEBUG"):
            traceback.print_exc()
        click.echo(f"kfgen: internal error ({type(exc).__name__}: {exc}); rerun with KFGEN_DEBUG=1 and report it", err=True)
        return EXIT_BUG
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


class Terminated(BaseException):
    """SIGTERM: unwinds like Ctrl-C, so a render removes its staging folder and stops its kustomize builds."""


def _terminated(signum: int, frame: object) -> None:
    raise Terminated()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kfgen")
def cli() -> None:
    """Render one stack.yaml into a layered GitOps tree for an ML platform on Kubernetes.

    Exit codes: 0 ok, 1 differences or violations found, 2 bad input, 3 an outside tool failed.
    """


@cli.command()
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False), default=Path("."))
@click.option("--name", help="The stack's name (default: the folder's name).")
@click.option("--repo-url", default="https://github.com/example/ml-platform.git", show_default=True, help="Git repository Argo CD reads.")
def init(directory: Path, name: str | None, repo_url: str) -> int:
    """Write a commented stack.yaml (and its JSON Schema, for editor completion) to start from."""
    target = directory / "stack.yaml"
    schema_copy = directory / "stack.schema.json"
    for path in (target, schema_copy):
        if path.exists() or path.is_symlink():  # a dangling symlink too: init never writes through one
            raise InputError(f"{path}: already exists; kfgen init does not overwrite it")
    import jinja2

    from kfgen.schema import schema_text

    wanted = name or directory.resolve().name
    name = _dns_name(wanted)  # metadata.name is a DNS label: "Acme ML" is written acme-ml
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
    text = environment.from_string(template_path("stack.yaml.j2").read_text()).render(name=name, repo_url=repo_url, path="deploy")
    directory.mkdir(parents=True, exist_ok=True)
    for path, content in ((target, text), (schema_copy, schema_text())):
        with open(path, "x", encoding="utf-8") as handle:  # "x": fails on anything already there, a symlink included
            handle.write(content)
    renamed = f" (named {name!r}: a stack's name is a DNS label)" if name != wanted else ""
    click.echo(f"wrote {target} and {schema_copy}{renamed}; next: kfgen validate {target}")
    return EXIT_OK


def _dns_name(text: str) -> str:
    """A DNS-1123 label from free text: lowercase ASCII letters and digits, runs of anything else one '-'."""
    words = "".join(c if c.isascii() and c.isalnum() else " " for c in text.lower()).split()
    cleaned = "-".join(words)[:63].strip("-")
    return cleaned or "ml-platform"


@cli.command()
@click.argument("stacks", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--allow-outside-repo", is_flag=True, help="Allow referenced files outside the stack's repository.")
def validate(stacks: tuple[Path, ...], allow_outside_repo: bool) -> int:
    """Check stack files: exit 0, or one line per problem (file:line:col: path: message) and exit 2.
    A stack that references your own manifests or patches is also built with kustomize (in a
    temporary folder), so what validate accepts, render never refuses."""
    import tempfile

    from kfgen.render import LintFailed, load_stack, render as run_render

    problems: list[str] = []
    violations: list[str] = []
    for path in stacks:
        try:
            stack = load_stack(path, str(path), allow_outside_repo)
            if stack.files:  # only kustomize can tell that your patches apply and your manifests fit
                with tempfile.TemporaryDirectory(prefix="kfgen-validate-") as tmp:
                    run_render(path, Path(tmp) / "out", display=str(path), allow_outside=allow_outside_repo,
                               reuse=False, remember=False)  # a throwaway folder: nothing of it in kfgen's cache
        except InputError as exc:
            problems.extend(exc.lines())
            continue
        except LintFailed as exc:
            violations.extend(exc.lines())
            continue
        enabled = sum(1 for c in stack.components.values() if c.enabled)
        click.echo(f"{path}: ok ({len(stack.environments)} environments, {enabled} components)")
    for line in problems + violations:
        click.echo(line, err=True)
    return EXIT_INPUT if problems else EXIT_FINDINGS if violations else EXIT_OK


@cli.command()
@click.argument("stack", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), help="Output folder (default: spec.gitops.path next to the stack).")
@click.option("--kustomize", "kustomize", help="The kustomize engine (a kustomize or kubectl binary); also KFGEN_KUSTOMIZE.")
@click.option("--allow-outside-repo", is_flag=True, help="Allow referenced files outside the stack's repository.")
@click.option("--fresh", is_flag=True, help="Write every file and build every environment (keep nothing of the previous render).")
@click.option("--timings", is_flag=True, help="Print the seconds each stage took (on stderr).")
def render(stack: Path, out: Path | None, kustomize: str | None, allow_outside_repo: bool, fresh: bool, timings: bool) -> int:
    """Render the stack into the layered tree and hydrate every environment with kustomize."""
    from kfgen.render import render as run_render

    interactive = sys.stderr.isatty() and not os.environ.get("CI")
    done: list[str] = []

    def progress(env: str) -> None:
        done.append(env)
        if interactive:
            click.echo(f"  built {env}", err=True)

    result = run_render(stack, out, display=str(stack), kustomize=kustomize, allow_outside=allow_outside_repo, progress=progress,
                        reuse=not fresh, remove_previous=False)
    total = sum(result.objects.values())
    per_env = ", ".join(f"{env} {n}" for env, n in result.objects.items())
    kept = f"; {len(result.reused)} unchanged environments kept" if result.reused else ""
    click.echo(f"rendered {len(result.objects)} environments ({per_env} objects, {total} in all) into {result.out} "
               f"in {time.perf_counter() - _started[-1]:.2f}s{kept}")
    if timings:
        stages = {**result.seconds, "total": time.perf_counter() - _started[-1]}
        click.echo("timings: " + " ".join(f"{stage}={seconds:.3f}" for stage, seconds in stages.items()), err=True)
    if result.retired:  # the new tree is in place and reported: the old one goes without keeping you waiting
        result.retired.remove_after_exit()
    return EXIT_OK


@cli.command()
@click.argument("stacks", nargs=-1, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), help="The committed output (default: spec.gitops.path next to the stack).")
@click.option("--names-only", is_flag=True, help="Name the files that differ, without their diffs.")
@click.option("--kustomize", "kustomize", help="The kustomize engine; also KFGEN_KUSTOMIZE.")
@click.option("--allow-outside-repo", is_flag=True, help="Allow referenced files outside the stack's repository.")
@click.option("--full", is_flag=True, help="Render to compare even when the output's record proves it up to date.")
def check(stacks: tuple[Path, ...], out: Path | None, names_only: bool, kustomize: str | None, allow_outside_repo: bool, full: bool) -> int:
    """Exit 0 when the committed output is exactly a fresh render of the stack, else 1, showing what differs.

    When the output's record proves it (the digests of every input and of every file it holds), without
    rendering. With no STACKS: ./stack.yaml, else every stack.yaml tracked in the repository."""
    from kfgen.check import check as run_check, discover

    paths = list(stacks) or [Path(os.path.relpath(p)) for p in discover(Path.cwd())]
    if out and len(paths) > 1:
        raise InputError(f"--out {out}: names one output folder, for one stack; name the stack")
    words = {"changed": "differs from a fresh render", "missing": "missing (a fresh render writes it)",
             "unexpected": "not written by a fresh render (hand-added or stale)"}
    code = EXIT_OK
    for stack in paths:
        out_dir, drift = run_check(stack, out, display=str(stack), kustomize=kustomize, allow_outside=allow_outside_repo, full=full)
        for item in drift:
            click.echo(f"{out_dir / item.path}: {words[item.reason]}")
        diffs = "".join(item.diff for item in drift)
        if diffs and not names_only:
            click.echo("\n" + diffs, nl=False)
        if drift:
            click.echo(f"{out_dir}: {len(drift)} files differ from a fresh render of {stack}; run: kfgen render {stack}", err=True)
            code = EXIT_FINDINGS
        else:
            click.echo(f"{out_dir}: up to date with {stack}")
    return code


@cli.command()
@click.argument("stack", type=click.Path(path_type=Path, dir_okay=False), default=Path("stack.yaml"))
@click.option("--base", "base_ref", required=True, help="The git ref to compare with (e.g. origin/main).")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text", show_default=True)
@click.option("--exit-code", is_flag=True, help="Exit 1 when there are changes.")
@click.option("--kustomize", "kustomize", help="The kustomize engine; also KFGEN_KUSTOMIZE.")
@click.option("--allow-outside-repo", is_flag=True, help="Allow referenced files outside the stack's repository (both renders).")
def diff(stack: Path, base_ref: str, fmt: str, exit_code: bool, kustomize: str | None, allow_outside_repo: bool) -> int:
    """Compare what the stack renders (hydrated and Argo CD objects) at a git ref with now, ordered by impact.

    A --base that names no commit is bad input (exit 2)."""
    from kfgen.diff import diff as run_diff
    from kfgen.report import as_json, as_markdown, as_text

    review = run_diff(stack, base_ref, display=str(stack), kustomize=kustomize, allow_outside=allow_outside_repo)
    if fmt == "json":
        click.echo(as_json(review), nl=False)
    elif fmt == "markdown":
        click.echo(as_markdown(review, str(stack), base_ref), nl=False)
    else:
        click.echo(as_text(review), nl=False)
    return EXIT_FINDINGS if exit_code and review.changes else EXIT_OK


@cli.command()
@click.argument("stack", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--from", "source", required=True, help="The environment whose revision is promoted.")
@click.option("--to", "target", required=True, help="The environment to promote (it has its own branch: sync.revision).")
@click.option("--revision", help="Promote this branch, tag or commit instead of what --from follows.")
@click.option("--rollback", is_flag=True, help="Allow a revision that does not contain the branch's current one.")
@click.option("--dry-run", is_flag=True, help="Show the review; do not move the branch.")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text", show_default=True)
def promote(stack: Path, source: str, target: str, revision: str | None, rollback: bool, dry_run: bool, fmt: str) -> int:
    """Move --to's branch to the commit --from runs, showing what changes in --to (nothing is pushed)."""
    from kfgen.promote import promote as run_promote
    from kfgen.report import as_json, as_markdown, as_text

    done = run_promote(stack, source, target, revision=revision, rollback=rollback, dry_run=dry_run, display=str(stack))
    head = f"{done.branch} {done.old[:12] if done.old else '(new branch)'} -> {done.new[:12]}"
    if fmt == "json":
        click.echo(as_json(done.review), nl=False)
    elif fmt == "markdown":
        click.echo(as_markdown(done.review, str(stack), f"{done.branch} at {done.old[:12] if done.old else '(none)'}",
                               title=f"### kfgen promote {source} -> {target}: {head}"), nl=False)
    else:
        click.echo(f"promote {source} -> {target}: {head}")
        click.echo(as_text(done.review), nl=False)
    if done.moved:
        click.echo(f"moved {done.branch} to {done.new[:12]}; publish it: git push origin {done.branch}", err=True)
    elif done.old == done.new:
        click.echo(f"{done.branch} is already at {done.new[:12]}: nothing to promote", err=True)
    else:
        click.echo(f"dry run: {done.branch} not moved", err=True)
    return EXIT_OK


@cli.command()
@click.argument("stack", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--with-output", is_flag=True, help="Also the rendered tree's folder (a hand edit there fails kfgen check).")
@click.option("--changed-since", "ref", help="Only those that differ between this git ref and the work tree.")
@click.option("--allow-outside-repo", is_flag=True, help="Allow referenced files outside the stack's repository.")
def inputs(stack: Path, with_output: bool, ref: str | None, allow_outside_repo: bool) -> int:
    """The files a render reads, one per line, relative to the repository root (folders end in '/')."""
    from kfgen.inputs import changed, inputs as find_inputs

    paths = find_inputs(stack, with_output=with_output, display=str(stack), allow_outside=allow_outside_repo)
    for path in changed(stack, ref, paths) if ref else paths:
        click.echo(path)
    return EXIT_OK


@cli.command()
@click.argument("out", type=click.Path(path_type=Path, file_okay=False), default=Path("deploy"))
@click.option("--crds", "crds", multiple=True, type=click.Path(path_type=Path), help="More CRDs (file or folder; repeatable), e.g. `kubectl get crd -o yaml` of a real cluster.")
@click.option("--ignore-missing-schemas", is_flag=True, help="Do not report objects of kinds no schema or CRD describes.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def lint(out: Path, crds: tuple[Path, ...], ignore_missing_schemas: bool, fmt: str) -> int:
    """Check a rendered tree: schemas (Kubernetes and CRDs) and policies. Exit 0 clean, 1 violations, 2 unreadable."""
    from kfgen.lint import POLICIES, as_json, lint_tree

    violations = lint_tree(out, list(crds), ignore_missing_schemas)
    if fmt == "json":
        click.echo(as_json(violations), nl=False)
    else:
        for v in violations:
            click.echo(f"{out}/{v}")
        broken = sorted({v.policy for v in violations} - {"SCHEMA"})
        why = "".join(f"\n  {p}: {POLICIES[p]}" for p in broken)
        click.echo(f"{out}: {len(violations)} violations{why}", err=True)
    return EXIT_FINDINGS if violations else EXIT_OK


@cli.group()
def tfjob() -> None:
    """The stack's TFJobs: list them, show a replica's TF_CONFIG, run a job on this machine."""


OUT_OPTION = click.option("--out", type=click.Path(path_type=Path, file_okay=False),
                          help="The rendered tree to read (default: spec.gitops.path when it is the render of this stack, else a fresh render).")


def _read_rendered(stack: Path, out: Path | None, env_name: str | None = None, all_envs: bool = False):
    """The stack's rendered objects and the environment chosen (checked before anything is rendered)."""
    from kfgen.render import load_stack
    from kfgen.rendered import choose_environment, read_rendered

    loaded = load_stack(stack, str(stack))
    env = None if all_envs and env_name is None else choose_environment(loaded, env_name)
    rendered = read_rendered(stack, out, loaded)
    if rendered.stale:
        click.echo(f"kfgen: note: the committed render was made from another version of {stack}; using a fresh render "
                   f"(run kfgen render {stack} to update it)", err=True)
    return rendered, env


@tfjob.command("list")
@click.argument("stack", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--env", "env_name", help="Only this environment (default: every environment, each line starting with its name).")
@OUT_OPTION
def tfjob_list(stack: Path, env_name: str | None, out: Path | None) -> int:
    """One line per rendered TFJob: name, replicas, accelerator, image."""
    from kfgen.tfjobs import describe

    rendered, env = _read_rendered(stack, out, env_name, all_envs=True)
    envs = [env] if env else [e.name for e in rendered.stack.environments]
    for name in envs:
        environment = next(e for e in rendered.stack.environments if e.name == name)
        for obj in sorted((o for o in rendered.objects[name] if o.get("kind") == "TFJob"), key=lambda o: o["metadata"]["name"]):
            line = describe(obj, environment)
            click.echo(line if env_name else f"{name}\t{line}")
    return EXIT_OK


@tfjob.command("tf-config")
@click.argument("stack", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--env", "env_name", help="The environment (default: the stack's only one).")
@click.option("--job", "job_name", required=True, help="The TFJob.")
@click.option("--replica", required=True, help="TYPE:INDEX, e.g. worker:1.")
@OUT_OPTION
def tfjob_tf_config(stack: Path, env_name: str | None, job_name: str, replica: str, out: Path | None) -> int:
    """Print the TF_CONFIG the training operator injects into one replica (nothing when it injects none)."""
    from kfgen.rendered import find_object, operator_cluster_domain
    from kfgen.tfconfig import CONTAINER, is_distributed, tensorflow_container, tf_config
    from kfgen.tfjobs import parse_replica

    replica_type, index = parse_replica(replica)
    rendered, env = _read_rendered(stack, out, env_name)
    obj = find_object(rendered.objects[env], "TFJob", job_name, env)
    try:
        config = tf_config(obj, replica_type, index, cluster_domain=operator_cluster_domain(rendered.objects[env]))
    except ValueError as exc:
        raise InputError(f"--replica {replica}: {exc}") from None
    if config is not None:
        click.echo(config)
    elif tensorflow_container(obj, replica_type) is None:
        click.echo(f"kfgen: {replica_type} of {job_name} has no container named {CONTAINER!r}: the operator injects no TF_CONFIG "
                   "(and its webhook rejects the TFJob; kfgen lint reports KFG008)", err=True)
    elif not is_distributed(obj):
        click.echo(f"kfgen: {job_name} has a single replica: the operator injects no TF_CONFIG", err=True)
    return EXIT_OK


@tfjob.command("run-local")
@click.argument("stack", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--job", "job_name", required=True, help="The TFJob.")
@click.option("--env", "env_name", help="The environment whose render to run (default: the stack's only one).")
@OUT_OPTION
@click.option("--model-dir", type=click.Path(path_type=Path, file_okay=False), help="Given to the code as KFGEN_MODEL_DIR (default: <work dir>/model).")
@click.option("--work-dir", type=click.Path(path_type=Path, file_okay=False),
              help="Logs, checkpoints (KFGEN_CHECKPOINT_DIR) and TensorBoard logs (KFGEN_TENSORBOARD_DIR) (default: a new temporary folder).")
@click.option("--steps", type=click.IntRange(min=1), help="Given to the code as KFGEN_STEPS.")
@click.option("--timeout", type=click.FloatRange(min=1), help="Seconds before the run fails (default: the TFJob's activeDeadlineSeconds, else none).")
@click.option("--only", "only", metavar="TYPE:INDEX", help="Run this replica only (the others' addresses still in its TF_CONFIG); prints how to start the others.")
@click.option("--print-env", is_flag=True, help="Print each replica's command line and environment, and run nothing.")
def tfjob_run_local(stack: Path, job_name: str, env_name: str | None, out: Path | None, model_dir: Path | None, work_dir: Path | None,
                    steps: int | None, timeout: float | None, only: str | None, print_env: bool) -> int:
    """Run a TFJob's replicas as local processes, supervised as the training operator would; exit 1 if the job fails."""
    import shutil
    import tempfile

    from kfgen.rendered import find_object
    from kfgen.runlocal import INSTALL_HINT, LocalRun, tensorflow_installed
    from kfgen.tfconfig import REPLICA_TYPES
    from kfgen.tfjobs import LocalDirs, local_replicas, parse_replica
    from kfgen.tfoperator import job_policy

    if not print_env and not tensorflow_installed():
        raise MissingExtraError(INSTALL_HINT)
    chosen = parse_replica(only, "--only") if only else None
    rendered, env = _read_rendered(stack, out, env_name)
    obj = find_object(rendered.objects[env], "TFJob", job_name, env)
    try:
        policy = job_policy(obj)
    except ValueError as exc:
        raise InputError(f"TFJob {job_name}: {exc}") from None
    names = [f"{t.lower()}-{i}" for t in REPLICA_TYPES for i in range(policy.counts.get(t, 0))]
    if chosen and f"{chosen[0].lower()}-{chosen[1]}" not in names:
        raise InputError(f"--only {only}: {job_name} has no such replica (it has: {', '.join(names)})")
    temporary = work_dir is None
    work = (work_dir or Path(tempfile.mkdtemp(prefix=f"kfgen-{job_name}-"))).resolve()
    dirs = LocalDirs(work, (model_dir or work / "model").resolve())
    try:
        replicas = local_replicas(obj, stack.resolve().parent, dirs, steps=steps, base_env=dict(os.environ))
    except InputError:
        if temporary:
            shutil.rmtree(work, ignore_errors=True)
        raise
    dirs.create()
    shell = dict(os.environ)
    if print_env:
        for replica in replicas:
            click.echo(f"# {replica.name}\n{replica.shell_line(shell)}")
        return EXIT_OK
    selected = [r for r in replicas if chosen is None or (r.replica_type, r.index) == chosen]
    if chosen is not None:
        others = [r for r in replicas if r not in selected]
        click.echo(f"kfgen: running {selected[0].name} only{'; start the others with:' if others else ''}", err=True)
        for replica in others:
            click.echo(f"  {replica.shell_line(shell)}", err=True)
    click.echo(f"kfgen: running {job_name} ({env}) locally: {', '.join(r.name for r in selected)}; model dir {dirs.model}; "
               f"logs, checkpoints and TensorBoard logs in {dirs.work}", err=True)
    run = LocalRun(job_name, selected, policy, dirs, sys.stdout, lambda line: click.echo(line, err=True), only=chosen is not None)
    return run.run(timeout)


@cli.command("serve-local")
@click.argument("stack", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--model", "model_name", required=True, help="The served model (its SeldonDeployment).")
@click.option("--env", "env_name", help="The environment whose render to serve (default: the stack's only one).")
@OUT_OPTION
@click.option("--model-dir", type=click.Path(path_type=Path, file_okay=False),
              help="The model's base folder, with version folders (1/, 2/...): what run-local wrote (default: modelUri when local).")
@click.option("--predictor", "predictor_name", help="With a traffic split, the version to serve (default: the one with the most traffic).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="The local port (0: any free one).")
def serve_local(stack: Path, model_name: str, env_name: str | None, out: Path | None, model_dir: Path | None, predictor_name: str | None,
                port: int) -> int:
    """Serve a TENSORFLOW_SERVER model on localhost with the local TensorFlow, answering the requests its route answers in the cluster."""
    from kfgen.runlocal import INSTALL_HINT, tensorflow_installed
    from kfgen.serve_local import Executor, Gateway, find_predictor, make_server, serve
    from kfgen.serve_local import model_dir as find_model_dir
    from kfgen.tfserving import Servable

    if not tensorflow_installed():
        raise MissingExtraError(INSTALL_HINT)
    rendered, env = _read_rendered(stack, out, env_name)
    predictor = find_predictor(rendered.objects[env], model_name, env, predictor_name)
    folder = find_model_dir(predictor, model_dir, stack.resolve().parent)
    server = make_server(port, lambda line: click.echo(line, err=True))
    try:
        servable = Servable(predictor.graph, folder)
    except BaseException:
        server.server_close()
        raise
    server.gateway = Gateway(Executor(predictor, servable))
    base = f"http://127.0.0.1:{server.server_address[1]}"
    route = predictor.routes[0] if predictor.routes else None
    url = f"{base}{route.prefix}" if route else f"{base}/"
    example = (f"POST {url}v1/models/{predictor.graph}:predict" if predictor.protocol == "tensorflow" and route
               else f"POST {url}{'v1/models/' + predictor.graph + ':predict' if predictor.protocol == 'tensorflow' else 'api/v1.0/predictions'}")
    cluster = f"; in the cluster: https://{route.hostname}{route.prefix}" if route and route.hostname else ""
    split = f", predictor {predictor.predictor} (not {', '.join(predictor.others)}: --predictor)" if predictor.others else ""
    click.echo(f"kfgen: serving {model_name} ({env}, protocol {predictor.protocol}{split}) version {servable.version} from {folder}{cluster}", err=True)
    try:
        serve(server, f"{url}\t{example}")
    except (KeyboardInterrupt, Terminated):
        click.echo(f"kfgen: stopped serving {model_name}", err=True)
    return EXIT_OK


@cli.command()
@click.argument("field", default="")
def explain(field: str) -> int:
    """Document a stack field, straight from the JSON Schema (e.g. spec.environments)."""
    from kfgen.schema import describe_schema, schema_at

    try:
        path, schema = schema_at(field)
    except KeyError as exc:
        raise InputError(f"kfgen explain: {exc.args[0]}") from None
    click.echo(describe_schema(path, schema), nl=False)
    return EXIT_OK


@cli.command()
@click.argument("stack", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--env", "env_name", help="Only this environment.")
def images(stack: Path, env_name: str | None) -> int:
    """List every image the stack deploys, per environment, after registry mirror rewrites."""
    import tempfile

    from kfgen.images import environment_images
    from kfgen.render import load_stack, render as run_render
    from kfgen.rendered import rendered_objects

    loaded = load_stack(stack, str(stack))
    envs = [e for e in loaded.environments if env_name in (None, e.name)]
    if not envs:
        raise InputError(f"{stack}: no environment {env_name!r} (have: {', '.join(e.name for e in loaded.environments)})")
    with tempfile.TemporaryDirectory(prefix="kfgen-") as tmp:
        out = run_render(stack, Path(tmp) / "out", display=str(stack)).out
        for env in envs:
            for image in environment_images(env, rendered_objects(out, env.name)):
                click.echo(f"{env.name}\t{image}")
    return EXIT_OK


@cli.command()
@click.argument("stack", type=click.Path(path_type=Path, dir_okay=False), required=False)
def profiles(stack: Path | None) -> int:
    """The clouds and accelerator profiles kfgen knows (with the stack's own, if given), as a table."""
    from kfgen.profiles import profile_index, support_matrix
    from kfgen.sources import read_profiles, read_sources

    docs = read_sources(stack, str(stack)).profiles if stack else read_profiles([], {})[0]
    click.echo(support_matrix(*profile_index(docs)), nl=False)
    return EXIT_OK


@cli.command()
@click.option("--deviations", is_flag=True, help="Also every declared deviation from upstream's install, with its reason.")
def components(deviations: bool) -> int:
    """The components, their supported upstream versions, and how kfgen's installs differ from upstream's."""
    from kfgen.component_table import components_table

    click.echo(components_table(deviations), nl=False)
    return EXIT_OK


@cli.command()
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), help="Write to this file instead of stdout.")
def schema(out: Path | None) -> int:
    """Print the stack's JSON Schema (for editors: # yaml-language-server: $schema=...)."""
    from kfgen.schema import schema_text

    text = schema_text()
    if out:
        out.write_text(text)
    else:
        click.echo(text, nl=False)
    return EXIT_OK


add_completions(cli)  # environment, job and field names for shell completion (kfgen.completion)

__all__ = ["main", "cli", "EXIT_FINDINGS"]
