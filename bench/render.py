"""Wall time of `kfgen render` by stage, next to bare `kustomize build` of the same overlays.

    python bench/render.py [--runs 5]

Stacks: every example in stacks/, and a generated stack of 20 environments (the example's
components and workloads on a rotation of clouds and accelerators). Figures are medians of
--runs renders into a fresh folder each time; "kustomize (serial)" builds each envs/<env> once
after the other, "kustomize (parallel)" builds them as kfgen does.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kfgen.kustomize import find_engine  # noqa: E402
from kfgen.render import render  # noqa: E402

STAGES = ["load", "validate", "engine", "write", "hydrate", "lint", "split", "swap"]
ROTATION = [("gke", "nvidia-l4", ""), ("eks", "nvidia-a100-40gb", ", count: 2"), ("aks", "nvidia-t4", ""), ("kind", "cpu", ""),
            ("gke", "nvidia-h100-80gb", ", mig: 1g.10gb")]
IDENTITY = {"gke": "ml-workloads@acme-bench.iam.gserviceaccount.com", "eks": "arn:aws:iam::123456789012:role/ml",
            "aks": "6f1c2b9e-3d4a-4c5b-8e7f-0a1b2c3d4e5f"}


def generated_stack(folder: Path, environments: int = 20) -> Path:
    """The example's stack with `environments` environments instead of its own."""
    example = (ROOT / "stacks/example/stack.yaml").read_text()
    head, rest = example.split("  environments:\n", 1)
    workloads = rest[rest.index("\n  workloads:\n") + 1:].replace("accelerator: gpu", "accelerator: acc")
    envs = []
    for i in range(environments):
        cloud, accelerator, extra = ROTATION[i % len(ROTATION)]
        identity = f"      identity: {{default: '{IDENTITY[cloud]}'}}\n" if cloud in IDENTITY else ""
        store = "      artifacts: {bucket: bench-artifacts, endpoint: minio:9000, credentialsSecret: minio}\n" if cloud == "kind" else \
            "      artifacts: {bucket: bench-artifacts, region: us-east-1}\n"
        envs.append(f"    env-{i:02d}:\n      cloud: {cloud}\n{identity}{store}      accelerators:\n        acc: {{type: {accelerator}{extra}}}\n")
    stack = folder / "stack.yaml"
    stack.write_text(head + "  environments:\n" + "".join(envs) + "\n" + workloads)
    return stack


def bench(stack: Path, runs: int) -> dict[str, float]:
    engine = find_engine()
    stages: dict[str, list[float]] = {s: [] for s in STAGES}
    totals, serial, parallel = [], [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            result = render(stack, Path(tmp) / "out")
            totals.append(time.perf_counter() - start)
            for stage in STAGES:
                stages[stage].append(result.seconds.get(stage, 0.0))
            envs = sorted((result.out / "envs").iterdir())
            start = time.perf_counter()
            for env in envs:
                engine.build(env)
            serial.append(time.perf_counter() - start)
            start = time.perf_counter()
            with ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(engine.build, envs))
            parallel.append(time.perf_counter() - start)
    figures = {stage: statistics.median(values) for stage, values in stages.items()}
    figures.update(total=statistics.median(totals), serial=statistics.median(serial), parallel=statistics.median(parallel),
                   envs=len(envs), objects=sum(result.objects.values()))
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    engine = find_engine()
    print(f"engine: {engine.description}; {args.runs} runs each, medians in milliseconds\n")
    header = ["stack", "envs", "objects", *STAGES, "render total", "kustomize (serial)", "kustomize (parallel)"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        stacks = [(p.parent.name, p) for p in sorted((ROOT / "stacks").glob("*/stack.yaml"))]
        stacks.append(("generated-20", generated_stack(Path(tmp))))
        for name, stack in stacks:
            f = bench(stack, args.runs)
            rows.append([name, str(f["envs"]), str(f["objects"]), *(f"{f[s] * 1000:.0f}" for s in STAGES),
                         f"{f['total'] * 1000:.0f}", f"{f['serial'] * 1000:.0f}", f"{f['parallel'] * 1000:.0f}"])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
