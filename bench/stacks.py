"""The stacks bench/render.py measures: the example, and stacks generated from it (more environments,
or many more workloads). Generated text only; nothing here runs kfgen."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROTATION = [("gke", "nvidia-l4", ""), ("eks", "nvidia-a100-40gb", ", count: 2"), ("aks", "nvidia-t4", ""), ("kind", "cpu", ""),
            ("gke", "nvidia-h100-80gb", ", mig: 1g.10gb")]
IDENTITY = {"gke": "ml-workloads@acme-bench.iam.gserviceaccount.com", "eks": "arn:aws:iam::123456789012:role/ml",
            "aks": "6f1c2b9e-3d4a-4c5b-8e7f-0a1b2c3d4e5f"}


def _example() -> tuple[str, str]:
    """The example stack split at its environments: (everything before them, its workloads section)."""
    example = (ROOT / "stacks/example/stack.yaml").read_text()
    head, rest = example.split("  environments:\n", 1)
    return head, rest[rest.index("\n  workloads:\n") + 1:]


def environments_stack(folder: Path, environments: int) -> Path:
    """The example's components and workloads on `environments` environments, a rotation of clouds and accelerators."""
    head, workloads = _example()
    workloads = workloads.replace("accelerator: gpu", "accelerator: acc")
    envs = []
    for i in range(environments):
        cloud, accelerator, extra = ROTATION[i % len(ROTATION)]
        identity = f"      identity: {{default: '{IDENTITY[cloud]}'}}\n" if cloud in IDENTITY else ""
        store = "      artifacts: {bucket: bench-artifacts, endpoint: minio:9000, credentialsSecret: minio}\n" if cloud == "kind" else \
            "      artifacts: {bucket: bench-artifacts, region: us-east-1}\n"
        envs.append(f"    env-{i:03d}:\n      cloud: {cloud}\n{identity}{store}      accelerators:\n        acc: {{type: {accelerator}{extra}}}\n")
    return _write(folder, head + "  environments:\n" + "".join(envs) + "\n" + workloads)


def workloads_stack(folder: Path, jobs: int = 200, models: int = 100, pipelines: int = 50) -> Path:
    """The example's two environments (kind for dev, GKE with L4s for prod) running many workloads."""
    head, _ = _example()
    envs = ("  environments:\n"
            "    dev:\n      cloud: kind\n      sync: {automated: true}\n"
            "      artifacts: {bucket: ml-artifacts, endpoint: minio.minio.svc:9000, insecure: true, credentialsSecret: minio-credentials}\n"
            "    prod:\n      cloud: gke\n      destination: {name: prod-gke}\n      exposure: external\n"
            "      identity: {default: ml-workloads@acme-prod.iam.gserviceaccount.com}\n      artifacts: {bucket: acme-ml-artifacts}\n"
            "      accelerators:\n        gpu: {type: nvidia-l4}\n\n")
    training = "".join(
        f"      job-{i:03d}:\n        image: ghcr.io/acme/trainer:0.1.{i}\n        command: [python, -m, trainer.train]\n"
        f"        args: [--steps, \"{100 + i}\"]\n        replicas: {{Worker: {1 + i % 4}}}\n        modelDir: gs://acme-ml-models/job-{i:03d}\n"
        "        resources:\n          requests: {cpu: \"1\", memory: 2Gi}\n          limits: {cpu: \"2\", memory: 4Gi}\n" for i in range(jobs))
    serving = "".join(
        f"      model-{i:03d}:\n        server: TENSORFLOW_SERVER\n        modelUri: gs://acme-ml-models/job-{i:03d}\n"
        "        resources:\n          requests: {cpu: \"1\", memory: 2Gi}\n" for i in range(models))
    steps = ("          load: {command: [python, -m, trainer.pipeline, load]}\n"
             "          train: {command: [python, -m, trainer.pipeline, train], inputs: [load]}\n"
             "          evaluate: {command: [python, -m, trainer.pipeline, evaluate], inputs: [train]}\n")
    pipelines_text = "".join(f"      pipe-{i:02d}:\n        image: ghcr.io/acme/trainer:0.1.0\n        schedule: \"{i % 60} 3 * * *\"\n"
                             f"        steps:\n{steps}" for i in range(pipelines))
    workloads = (f"  workloads:\n    namespace: ml\n    training:\n{training}    serving:\n{serving}    pipelines:\n{pipelines_text}"
                 "    notebooks:\n      cpu:\n        displayName: Python (CPU)\n        image: quay.io/jupyter/scipy-notebook:2024-10-07\n"
                 "        default: true\n")
    return _write(folder, head + envs + workloads)


def one_environment_edit(stack: Path, environment: str, generation: int) -> None:
    """Change one environment only: the bucket of its artifact store (`<bucket>-<generation>`)."""
    text = stack.read_text()
    start = text.index(f"\n    {environment}:\n") + 1
    block = re.search(r"\n    \S", text[start:])
    end = start + block.start() + 1 if block else len(text)
    edited = re.sub(r"bucket: ([a-z-]+?)(-\d+)?([,}\n])", rf"bucket: \1-{generation}\3", text[start:end], count=1)
    assert edited != text[start:end], environment
    stack.write_text(text[:start] + edited + text[end:])


def _write(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    stack = folder / "stack.yaml"
    stack.write_text(text)
    return stack
