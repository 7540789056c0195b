"""Schema and cross-field rules: every problem at once, each with its exact line, path and reason."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from kfgen.errors import InputError
from kfgen.render import load_stack

BASE = """\
apiVersion: kfgen.io/v1alpha1
kind: Stack
metadata:
  name: t
spec:
  gitops:
    repoURL: https://example.com/r.git
  components:
    jupyterhub: {{auth: {{type: github, allowedUsers: [alice]}}}}
    ambassador:
      hostname: ml.example.com
  environments:
    dev:
      cloud: kind
{env_extra}
  workloads:
    training:
      job:
        image: tensorflow/tensorflow:2.18.0
        command: [python, train.py]
        replicas: {{Worker: 2}}
{job_extra}
"""


def stack_text(env_extra: str = "", job_extra: str = "") -> str:
    return BASE.format(env_extra=textwrap.indent(textwrap.dedent(env_extra), " " * 6).rstrip("\n"),
                       job_extra=textwrap.indent(textwrap.dedent(job_extra), " " * 8).rstrip("\n"))


def errors(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "stack.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        load_stack(path, "stack.yaml")
    return info.value.lines()


def test_minimal_stack_is_valid(tmp_path):
    path = tmp_path / "stack.yaml"
    path.write_text(stack_text())
    stack = load_stack(path)
    assert [e.name for e in stack.environments] == ["dev"]
    assert stack.components["seldon-core"].version == "1.17.1"  # the Apache-2.0 default
    assert stack.workloads.training[0].resources.limits == {"cpu": "2", "memory": "4Gi"}


def test_unknown_key_with_did_you_mean(tmp_path):
    text = stack_text(job_extra="acclerator: gpu")
    assert errors(tmp_path, text) == ["stack.yaml:22:9: spec.workloads.training.job.acclerator: unknown key 'acclerator' (did you mean 'accelerator'?)"]


def test_enum_type_and_required_problems_all_at_once(tmp_path):
    text = stack_text(env_extra="exposure: public\nsync: {automated: maybe}", job_extra="port: two")
    text = text.replace("    repoURL: https://example.com/r.git\n", "    targetRevision: main\n")
    assert errors(tmp_path, text) == [
        "stack.yaml:7:5: spec.gitops: missing required key 'repoURL'",
        "stack.yaml:15:17: spec.environments.dev.exposure: 'public' is not one of: internal, external",
        "stack.yaml:16:25: spec.environments.dev.sync.automated: expected true or false, got 'maybe'",
        "stack.yaml:23:15: spec.workloads.training.job.port: expected an integer, got 'two'",
    ]


def test_names_must_be_dns_labels(tmp_path):
    text = stack_text().replace("    dev:\n", "    Dev_1:\n").replace("      job:\n", "      ../../x:\n")
    assert errors(tmp_path, text) == [
        "stack.yaml:13:5: spec.environments.Dev_1: 'Dev_1' is not a valid name: use lowercase letters, digits and '-', "
        "starting and ending with a letter or digit, at most 63 characters (DNS-1123 label)",
        "stack.yaml:18:7: spec.workloads.training.../../x: '../../x' is not a valid name: use lowercase letters, digits and '-', "
        "starting and ending with a letter or digit, at most 63 characters (DNS-1123 label)",
    ]


def test_unsupported_version_lists_the_supported_ones(tmp_path):
    text = stack_text().replace("      hostname: ml.example.com\n", "      hostname: ml.example.com\n      version: 4.0.0\n")
    assert errors(tmp_path, text) == ["stack.yaml:12:16: spec.components.ambassador.version: '4.0.0' is not one of: 3.10.0"]


def test_accelerator_not_offered_by_the_environment(tmp_path):
    assert errors(tmp_path, stack_text(job_extra="accelerator: gpu")) == [
        "stack.yaml:22:22: spec.workloads.training.job.accelerator: accelerator class 'gpu' is not offered by environment 'dev' (it offers: none)"]


def test_an_override_decides_where_the_problem_is(tmp_path):
    env = """\
    accelerators:
      gpu: {type: nvidia-l4}
    overrides:
      workloads:
        training:
          job: {accelerator: tpu}
          jbo: {replicas: {Worker: 1}}
    """
    assert errors(tmp_path, stack_text(env_extra=env, job_extra="accelerator: gpu")) == [
        "stack.yaml:20:32: spec.environments.dev.overrides.workloads.training.job.accelerator: accelerator class 'tpu' is not offered by environment 'dev' (it offers: gpu)",
        "stack.yaml:21:13: spec.environments.dev.overrides.workloads.training.jbo: no training workload 'jbo' in spec.workloads.training (did you mean 'job'?)",
    ]


@pytest.mark.parametrize("cloud, klass, message", [
    ("eks", "{type: tpu-v5e, topology: 2x4}", "tpu-v5e is not offered on eks (it runs on gke)"),
    ("aks", "{type: nvidia-l4}", "nvidia-l4 is not offered on aks (it runs on eks, gke, onprem)"),
    ("gke", "{type: nvidia-a100-80gb, mig: 1g.5gb}", "'1g.5gb' is not a MIG profile of nvidia-a100-80gb (it has: 1g.10gb, 2g.20gb, 3g.40gb, 7g.80gb)"),
    ("gke", "{type: nvidia-t4, count: 8}", "8 x nvidia-t4 per pod, but a gke node has at most 4"),
    ("gke", "{type: tpu-v5e, topology: 3x3}", "'3x3' is not a tpu-v5e topology (known: 1x1, 2x2, 2x4, 4x4, 4x8, 8x8, 8x16, 16x16)"),
    ("gke", "{type: tpu-v5e, topology: 1x1}", "topology 1x1 has 1 chips, which ct5lp-hightpu-4t hosts (4 chips each) cannot form"),
    ("gke", "{type: nvidia-h200}", "no accelerator profile 'nvidia-h200' (did you mean 'nvidia-h100-80gb'?)"),
])
def test_impossible_accelerator_classes(tmp_path, cloud, klass, message):
    lines = errors(tmp_path, stack_text(env_extra=f"accelerators:\n  gpu: {klass}").replace("cloud: kind", f"cloud: {cloud}"))
    assert len(lines) == 1 and lines[0].endswith(": " + message), lines
    assert lines[0].startswith("stack.yaml:16:")


def test_multi_host_tpu_slice_needs_one_replica_per_host(tmp_path):
    text = stack_text(env_extra="accelerators:\n  tpu: {type: tpu-v5e, topology: 4x4}", job_extra="accelerator: tpu")
    assert errors(tmp_path, text.replace("cloud: kind", "cloud: gke")) == [
        "stack.yaml:22:19: spec.workloads.training.job.replicas: TPU slice 4x4 of tpu-v5e has 4 hosts: the job needs 4 TPU "
        "replicas (Chief + Worker + Evaluator), it has 2 in environment 'dev'"]


def test_components_cannot_share_a_namespace(tmp_path):
    text = stack_text().replace("    jupyterhub: {auth:", "    jupyterhub: {namespace: kubeflow, auth:")
    assert errors(tmp_path, text) == [
        "stack.yaml:9:29: spec.components.jupyterhub.namespace: namespace 'kubeflow' is also used by training-operator; "
        "each component owns its namespace (Namespace object, Pod Security level, Argo CD application)"]


def test_images_must_be_pinned(tmp_path):
    text = stack_text().replace("tensorflow/tensorflow:2.18.0", "tensorflow/tensorflow:latest")
    assert errors(tmp_path, text) == [
        "stack.yaml:19:16: spec.workloads.training.job.image: image 'tensorflow/tensorflow:latest' uses 'latest'; pin a version or a digest"]


def test_identity_format_per_cloud(tmp_path):
    text = stack_text(env_extra="identity: {default: not-an-arn}").replace("cloud: kind", "cloud: eks")
    assert errors(tmp_path, text) == [
        "stack.yaml:15:27: spec.environments.dev.identity.default: 'not-an-arn' is not a eks identity (e.g. arn:aws:iam::123456789012:role/ml-training)"]


def test_pipeline_steps_inputs_and_cycles(tmp_path):
    text = stack_text() + textwrap.indent(textwrap.dedent("""\
        pipelines:
          p:
            image: python:3.11-slim
            steps:
              a: {command: [a], inputs: [b]}
              b: {command: [b], inputs: [a, c]}
    """), "    ")
    text = text.replace("      cloud: kind\n", "      cloud: kind\n      artifacts: {bucket: art, endpoint: minio:9000, credentialsSecret: minio}\n")
    assert errors(tmp_path, text) == [
        "stack.yaml:27:9: spec.workloads.pipelines.p.steps: the steps' inputs form a cycle: b -> a -> b (each reads the one "
        "before); remove 'b' from the inputs of 'a', or another input of the cycle",
        "stack.yaml:29:41: spec.workloads.pipelines.p.steps.b.inputs[1]: no step 'c' in this pipeline",
    ]


def test_referenced_files_must_exist_and_stay_in_the_repo(tmp_path):
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    text = stack_text().replace("      hostname: ml.example.com\n",
                                "      hostname: ml.example.com\n      extraResources: [extra/quota.yaml, ../../etc/passwd]\n")
    path = tmp_path / "repo" / "stack.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        load_stack(path, "stack.yaml")
    assert info.value.lines() == [
        "stack.yaml:12:24: spec.components.ambassador.extraResources[0]: file or folder 'extra/quota.yaml' not found (relative to the stack file)",
        f"stack.yaml:12:42: spec.components.ambassador.extraResources[1]: '../../etc/passwd' is outside the stack's repository ({tmp_path / 'repo'}); pass --allow-outside-repo to allow it",
    ]


def test_an_oauth_hub_open_to_everyone_is_a_decision(tmp_path):
    text = stack_text().replace("    jupyterhub: {auth: {type: github, allowedUsers: [alice]}}", "    jupyterhub: {auth: {type: github}}")
    assert errors(tmp_path, text) == [
        "stack.yaml:9:24: spec.components.jupyterhub.auth: a github login with no allowedUsers lets nobody in; list allowedUsers (or "
        "set allowAll: true and accept the risk hub-open-login)"]
