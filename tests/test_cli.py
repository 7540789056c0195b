"""The command line: init -> validate -> render, explain, images, profiles; errors are one line."""

from __future__ import annotations

import pytest
from conftest import ROOT

from kfgen.profiles import profile_index, support_matrix
from kfgen.sources import read_profiles


@pytest.mark.kustomize
def test_init_validate_render(kfgen, tmp_path):
    folder = tmp_path / "my-platform"
    run = kfgen("init", folder)
    assert run.code == 0, run.err
    text = (folder / "stack.yaml").read_text()
    assert text.startswith("# yaml-language-server: $schema=./stack.schema.json\n")
    assert "name: my-platform\n" in text
    assert (folder / "stack.schema.json").read_text() == (ROOT / "schemas" / "stack.schema.json").read_text()
    assert kfgen("validate", folder / "stack.yaml").out == f"{folder / 'stack.yaml'}: ok (1 environments, 5 components)\n"
    assert kfgen("render", folder / "stack.yaml").code == 0
    assert (folder / "deploy" / "rendered" / "dev").is_dir()
    again = kfgen("init", folder)
    assert (again.code, again.err) == (2, f"{folder / 'stack.yaml'}: already exists; kfgen init does not overwrite it\n")


def test_validate_reports_every_file_and_exits_2(kfgen, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: kfgen.io/v1alpha1\nkind: Stack\nmetadata: {name: x}\nspec: {}\n")
    run = kfgen("validate", ROOT / "stacks/example/stack.yaml", bad)
    assert run.code == 2
    assert run.err.splitlines() == [f"{bad}:4:7: spec: missing required key 'environments'", f"{bad}:4:7: spec: missing required key 'gitops'"]


def test_a_missing_stack_file(kfgen, tmp_path):
    run = kfgen("render", tmp_path / "nope.yaml")
    assert (run.code, run.err) == (2, f"{tmp_path / 'nope.yaml'}:1:1: file not found\n")


@pytest.mark.parametrize("field, first_lines", [
    ("spec.environments", ["FIELD: spec.environments", "TYPE: map of name -> object"]),
    ("spec.environments.prod.accelerators.gpu.type", ["FIELD: spec.environments.prod.accelerators.gpu.type", "TYPE: string"]),
    ("spec.components.seldon-core.version", ["FIELD: spec.components.seldon-core.version", "TYPE: enum", "DEFAULT: \"1.17.1\"", "ONE OF: 1.17.1, 1.18.2"]),
])
def test_explain(kfgen, field, first_lines):
    run = kfgen("explain", field)
    assert run.code == 0 and run.out.splitlines()[: len(first_lines)] == first_lines


def test_explain_an_unknown_field(kfgen):
    run = kfgen("explain", "spec.enviroments")
    assert (run.code, run.err) == (2, "kfgen explain: spec has no field 'enviroments' (did you mean 'environments'?)\n")


def test_every_schema_field_has_a_description():
    from kfgen.schema import stack_schema

    missing = []

    def walk(node, path):
        if isinstance(node, dict):
            if "properties" in node:
                for name, child in node["properties"].items():
                    if not (isinstance(child, dict) and child.get("description")):
                        missing.append(f"{path}.{name}")
            for key, child in node.items():
                walk(child, f"{path}.{key}")
        elif isinstance(node, list):
            for i, child in enumerate(node):
                walk(child, f"{path}[{i}]")

    walk(stack_schema(), "")
    assert missing == []


@pytest.mark.kustomize
def test_images_lists_what_each_environment_pulls(kfgen):
    run = kfgen("images", ROOT / "stacks/example/stack.yaml", "--env", "prod")
    assert run.code == 0
    images = [line.split("\t")[1] for line in run.out.splitlines()]
    assert images == sorted(set(images))
    for expected in ("quay.io/argoproj/argoexec:v3.6.19", "docker.io/seldonio/seldon-core-executor:1.17.1",
                     "docker.io/tensorflow/serving:2.21.0-gpu", "ghcr.io/acme/iris-trainer:0.1.0-gpu",
                     "quay.io/jupyter/tensorflow-notebook:cuda-2024-10-07", "docker.io/emissaryingress/emissary:3.10.0"):
        assert expected in images
    assert not [i for i in images if i.endswith(":latest") or ":" not in i.rsplit("/", 1)[-1]]


@pytest.mark.kustomize
def test_images_follow_a_registry_mirror(kfgen, example):
    example.write_text(example.read_text().replace("      namespace: argo\n", "      namespace: argo\n      imageRegistry: registry.acme.example/mirror\n"))
    run = kfgen("images", example, "--env", "dev")
    argo = [line.split("\t")[1] for line in run.out.splitlines() if "argoproj" in line]
    assert argo == ["registry.acme.example/mirror/argoproj/argocli:v3.6.19", "registry.acme.example/mirror/argoproj/argoexec:v3.6.19",
                    "registry.acme.example/mirror/argoproj/workflow-controller:v3.6.19"]


def test_readme_shows_the_support_matrix():
    matrix = support_matrix(*profile_index(read_profiles([], {})[0]))
    assert matrix in (ROOT / "README.md").read_text()


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- test-command -->")[1].split("<!-- /test-command -->")[0]
    command = [line for line in block.strip().splitlines() if not line.startswith("```")]
    assert command == ["python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && .venv/bin/python tests/cluster/build.py"
                       " && .venv/bin/python -m pytest -q"]
    assert "sed -n '/<!-- test-command -->/,/<!-- \\/test-command -->/p' README.md" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.kustomize
def test_images_include_your_own_manifests(kfgen, example):
    (example.parent / "extra.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: exporter, namespace: kubeflow}\nspec:\n  selector: {matchLabels: {app: x}}\n"
        "  template:\n    metadata: {labels: {app: x}}\n    spec:\n      securityContext: {runAsNonRoot: true}\n      containers:\n"
        "      - name: x\n        image: ghcr.io/acme/exporter:2.0.1\n        resources: {limits: {cpu: 100m, memory: 64Mi}, requests: {cpu: 100m, memory: 64Mi}}\n")
    example.write_text(example.read_text().replace("      namespace: kubeflow\n", "      namespace: kubeflow\n      extraResources: [extra.yaml]\n"))
    run = kfgen("images", example, "--env", "dev")
    assert run.code == 0, run.err
    assert "dev\tghcr.io/acme/exporter:2.0.1" in run.out.splitlines()


def test_readme_shows_the_components_and_their_deviations(kfgen):
    from kfgen.component_table import components_table

    run = kfgen("components", "--deviations")
    assert run.code == 0 and run.out == components_table(deviations=True)
    block = (ROOT / "README.md").read_text().split("<!-- components -->\n")[1].split("<!-- /components -->")[0]
    assert block == run.out
    assert kfgen("components").out.splitlines()[2].startswith("| Argo Workflows | `argo-workflows` | v3.6.19 |")


@pytest.mark.kustomize
def test_a_mirrored_stack_lists_only_mirror_references(kfgen, example):
    (example.parent / "exporter.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: exporter, namespace: kubeflow}\nspec:\n  selector: {matchLabels: {app: x}}\n"
        "  template:\n    metadata: {labels: {app: x}}\n    spec:\n      securityContext: {runAsNonRoot: true}\n      containers:\n"
        "      - name: x\n        image: prom/statsd-exporter:v0.27.1\n        resources: {limits: {cpu: 100m, memory: 64Mi}, requests: {cpu: 100m, memory: 64Mi}}\n")
    text = example.read_text().replace("      namespace: kubeflow\n", "      namespace: kubeflow\n      extraResources: [exporter.yaml]\n")
    text = text.replace("  components:\n", "  images:\n    mirror: registry.acme.example/mirror\n    rewrites:\n"
                        "      docker.io: registry.acme.example/dockerhub\n      quay.io: registry.acme.example/quay\n  components:\n", 1)
    example.write_text(text)
    run = kfgen("images", example)
    assert run.code == 0, run.err
    images = [line.split("\t")[1] for line in run.out.splitlines()]
    assert {line.split("\t")[0] for line in run.out.splitlines()} == {"dev", "prod"}
    assert [i for i in images if not i.startswith("registry.acme.example/")] == []
    for expected in ("registry.acme.example/dockerhub/prom/statsd-exporter:v0.27.1",  # your own manifest, through kustomize's images
                     "registry.acme.example/quay/argoproj/argoexec:v3.6.19",  # Argo's executor
                     "registry.acme.example/dockerhub/seldonio/seldon-core-executor:1.17.1",  # what Seldon starts
                     "registry.acme.example/dockerhub/tensorflow/serving:2.21.0",  # Seldon's TF Serving (CPU in dev)
                     "registry.acme.example/dockerhub/tensorflow/serving:2.21.0-gpu",  # its GPU variant, named in prod's model
                     "registry.acme.example/quay/jupyter/tensorflow-notebook:cuda-2024-10-07",  # a notebook image
                     "registry.acme.example/mirror/ghcr.io/acme/iris-trainer:0.1.0-gpu",  # a workload, with its accelerator variant
                     "registry.acme.example/mirror/registry.k8s.io/ingress-nginx/kube-webhook-certgen:v1.4.4"):
        assert expected in images, expected
