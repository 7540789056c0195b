"""How fast kfgen renders, next to the floor: what kustomize itself costs.

    python bench/render.py [--runs 5] [--sizes example,20,100,workloads,200]

For each stack, in one run (so the ratios compare like with like on a shared machine):

  render    `kfgen render` into a new folder, a fresh process (imports included), wall time
  floor     bare `kustomize build` of every environment, in parallel as kfgen runs them, plus
            writing the same files (every file of the render) with plain Python
  ratio     render / floor
  peak MB   the kfgen process's peak resident memory (kustomize's processes not included)
  check     `kfgen check` of the unchanged render: with kfgen's cache as the render left it, and
            cold (an empty cache: every file read and hashed, as on a fresh CI machine)
  1-env     `kfgen render` again after a change to one environment (its Seldon operator's replicas)
  diff      `kfgen diff --base HEAD` of that change, the render committed in a git repository

Figures are medians of --runs (the 200-environment stack renders in full once: it is there for
the re-render, the check and the diff). Stage times of the median render follow the table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from kfgen.kustomize import find_engine  # noqa: E402
from stacks import environments_stack, one_environment_edit, workloads_stack  # noqa: E402

SIZES = {"example": "the example, 2 envs", "20": "20 envs", "100": "100 envs", "workloads": "2 envs, 200 TFJobs + 100 models + 50 pipelines",
         "200": "200 envs"}
FULL_RENDERS_ONCE = {"200"}
# kfgen in a fresh process, reporting its own peak memory (not its kustomize children's) on its last stderr line
RUN = ("import resource, sys\nfrom kfgen.cli import main\ncode = main(sys.argv[1:])\n"
       "print('peak-kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\nsys.exit(code)\n")
GIT = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@kfgen.invalid", "GIT_COMMITTER_NAME": "bench",
       "GIT_COMMITTER_EMAIL": "bench@kfgen.invalid", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def kfgen(*args: object, env: dict | None = None, cwd: Path | None = None) -> tuple[float, int, dict[str, float]]:
    """(wall seconds, peak kB, stage timings) of one kfgen command in a fresh process; exits on failure."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", RUN, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **(env or {})})
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 1) or (done.returncode == 1 and args[0] != "diff"):
        sys.exit(f"kfgen {' '.join(map(str, args))} failed ({done.returncode}):\n{done.stderr}")
    lines = done.stderr.splitlines()
    peak = int(lines[-1].split()[1])
    timings = {}
    for line in lines:
        if line.startswith("timings: "):
            timings = {k: float(v) for k, v in (item.split("=") for item in line.removeprefix("timings: ").split())}
    return seconds, peak, timings


def floor(tree: Path, scratch: Path) -> tuple[float, float]:
    """(seconds of bare kustomize builds of every environment in parallel, seconds writing the tree's files with plain Python)."""
    engine = find_engine()
    envs = sorted((tree / "envs").iterdir())
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=min(len(envs), os.cpu_count() or 2, 8)) as pool:
        list(pool.map(engine.build, envs))
    built = time.perf_counter() - start
    files = {p.relative_to(tree): p.read_bytes() for p in tree.rglob("*") if p.is_file()}
    start = time.perf_counter()
    for relative, data in files.items():
        target = scratch / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as handle:
            handle.write(data)
    written = time.perf_counter() - start
    shutil.rmtree(scratch)
    return built, written


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, env={**os.environ, **GIT}, check=True, capture_output=True)


def bench(size: str, stack: Path, work: Path, runs: int) -> dict:
    cache = work / "cache"
    env = {"KFGEN_CACHE_DIR": str(cache)}
    renders, builds, writes, peaks, stages = [], [], [], [], []
    for run in range(1 if size in FULL_RENDERS_ONCE else runs):
        out = work / f"render-{run}"
        seconds, peak, timings = kfgen("render", stack, "--out", out, "--timings", env=env)
        built, written = floor(out, work / "plain")
        renders.append(seconds)
        builds.append(built)
        writes.append(written)
        peaks.append(peak)
        stages.append(timings)
        if run:
            shutil.rmtree(out)
    out = work / "render-0"
    objects = sum(1 for _ in (out / "rendered").rglob("*.yaml"))
    envs = len(list((out / "envs").iterdir()))
    warm = [kfgen("check", stack, "--out", out, env=env)[0] for _ in range(runs)]
    cold = [kfgen("check", stack, "--out", out, env={"KFGEN_CACHE_DIR": str(work / f"cold-{i}")})[0] for i in range(runs)]
    edited = sorted(p.name for p in (out / "envs").iterdir())[-(envs // 4 or 1)]
    rerenders = []
    for i in range(runs):
        one_environment_edit(stack, edited, 3 + i % 2)
        rerenders.append(kfgen("render", stack, "--out", out, env=env)[0])
    repo = work / "repo"
    repo.mkdir()
    shutil.copy(stack, repo / "stack.yaml")
    kfgen("render", repo / "stack.yaml", env=env)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "platform")
    one_environment_edit(repo / "stack.yaml", edited, 5)
    diffs = [kfgen("diff", repo / "stack.yaml", "--base", "HEAD", env=env, cwd=repo)[0] for _ in range(runs)]
    median = statistics.median
    middle = sorted(range(len(renders)), key=lambda i: renders[i])[len(renders) // 2]
    return {"size": size, "envs": envs, "objects": objects, "runs": len(renders), "render": median(renders),
            "kustomize": median(builds), "write": median(writes), "floor": median(b + w for b, w in zip(builds, writes)),
            "peak_mb": max(peaks) / 1024, "check": median(warm), "check_cold": median(cold), "rerender": median(rerenders),
            "diff": median(diffs), "stages": stages[middle]}


def table(rows: list[dict]) -> str:
    header = ["stack", "envs", "objects", "render", "floor (kustomize + write)", "ratio", "peak MB", "check (cold)", "1-env render",
              "diff"]
    lines = [header]
    for r in rows:
        lines.append([SIZES[r["size"]] + (" (1 run)" if r["runs"] == 1 else ""), str(r["envs"]), f"{r['objects']:,}", f"{r['render']:.2f} s",
                      f"{r['floor']:.2f} s ({r['kustomize']:.2f} + {r['write']:.2f})", f"{r['render'] / r['floor']:.2f}x",
                      f"{r['peak_mb']:.0f}", f"{r['check']:.2f} s ({r['check_cold']:.2f} s)", f"{r['rerender']:.2f} s",
                      f"{r['diff']:.2f} s"])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths))) for line in lines]
    stages = sorted({s for r in rows for s in r["stages"]} - {"total"}, key=lambda s: list(rows[0]["stages"]).index(s)
                    if s in rows[0]["stages"] else 99)
    text += ["", "stages of the median render (s): " + ", ".join(stages)]
    for r in rows:
        text.append(f"  {SIZES[r['size']]}: " + " ".join(f"{r['stages'].get(s, 0):.2f}" for s in stages))
    return "\n".join(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sizes", default=",".join(SIZES), help=f"comma-separated, of: {', '.join(SIZES)}")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    sizes = args.sizes.split(",")
    print(f"engine: {find_engine().description}; {os.cpu_count()} cores; medians of {args.runs} runs", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="kfgen-bench-", dir=os.environ.get("KFGEN_BENCH_DIR")) as tmp:
        for size in sizes:
            work = Path(tmp) / size
            source = work / "source"
            if size == "example":
                source.mkdir(parents=True)
                shutil.copy(ROOT / "stacks/example/stack.yaml", source / "stack.yaml")
                stack = source / "stack.yaml"
            elif size == "workloads":
                stack = workloads_stack(source)
            else:
                stack = environments_stack(source, int(size))
            rows.append(bench(size, stack, work, args.runs))
            print(f"  {SIZES[size]}: done", flush=True)
    print()
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
