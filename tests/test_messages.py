"""Mistakes a new user makes, each as `kfgen validate` reports it: one exact line with its place, exit 2,
every problem of the stack at once. (A patch kustomize cannot apply: test_render.py, with kustomize.)"""

from __future__ import annotations

import textwrap

import pytest

STACK = """\
apiVersion: kfgen.io/v1alpha1
kind: Stack
metadata: {name: msgs}
spec:
  kubernetesVersion: "1.31"
  gitops: {repoURL: https://example.com/r.git}
  components:
    ambassador: {hostname: ml.example.com}
    jupyterhub: {auth: {type: github, allowedUsers: [alice]}}
  environments:
    dev:
      cloud: kind
      artifacts: {bucket: artifacts, endpoint: minio:9000, credentialsSecret: minio}
  workloads:
    serving:
      iris: {modelUri: gs://models/iris}
    pipelines:
      nightly:
        image: python:3.11-slim
        schedule: "0 3 * * *"
        timezone: UTC
        parameters: {learning_rate: "0.01", max-depth: 6}
        steps:
          prep: {command: [prep]}
          train: {command: [train], inputs: [prep]}
"""


def validate(kfgen, tmp_path, text: str):
    path = tmp_path / "stack.yaml"
    path.write_text(text)
    run = kfgen("validate", path)
    return run.code, [line.replace(str(path), "stack.yaml") for line in run.err.splitlines()]


def test_the_base_stack_is_valid_with_argos_parameter_names(kfgen, tmp_path):
    assert validate(kfgen, tmp_path, STACK) == (0, [])


def test_a_time_zone_argo_does_not_know(kfgen, tmp_path):
    assert validate(kfgen, tmp_path, STACK.replace("timezone: UTC", "timezone: Europe/Berln")) == (2, [
        "stack.yaml:21:19: spec.workloads.pipelines.nightly.timezone: 'Europe/Berln' is not an IANA time zone (did you mean "
        "'Europe/Berlin'?); Argo's CronWorkflow needs one, e.g. Europe/Berlin, America/New_York or UTC"])


def test_two_models_on_one_route(kfgen, tmp_path):
    text = STACK.replace("      iris: {modelUri: gs://models/iris}\n",
                         "      iris: {modelUri: gs://models/iris}\n      iris-v2: {modelUri: gs://models/iris-v2, route: {prefix: /models/iris/}}\n")
    assert validate(kfgen, tmp_path, text) == (2, [
        "stack.yaml:17:64: spec.workloads.serving.iris-v2.route.prefix: route /models/iris/ of model iris-v2 is also the route of "
        "model iris, in environment 'dev' (Emissary matches prefixes as text: one route would take the other's requests); give "
        "model iris-v2 a prefix of its own, e.g. route.prefix: /models/iris-v2/"])


def test_a_route_prefix_that_is_not_a_path(kfgen, tmp_path):
    text = STACK.replace("iris: {modelUri: gs://models/iris}", "iris: {modelUri: gs://models/iris, route: {prefix: models/iris}}")
    assert validate(kfgen, tmp_path, text) == (2, [
        "stack.yaml:16:58: spec.workloads.serving.iris.route.prefix: 'models/iris' is not valid: expected a URL path that starts "
        "and ends with '/' (e.g. /models/iris/)"])


def test_two_parameters_that_would_be_one_variable(kfgen, tmp_path):
    text = STACK.replace('parameters: {learning_rate: "0.01", max-depth: 6}', 'parameters: {learning_rate: "0.01", learning-rate: "0.1"}')
    assert validate(kfgen, tmp_path, text) == (2, [
        "stack.yaml:22:22: spec.workloads.pipelines.nightly.parameters.learning_rate: parameters 'learning-rate' and 'learning_rate' "
        "would both be PARAM_LEARNING_RATE in the steps' environment; rename one"])


def test_a_parameter_name_argo_refuses(kfgen, tmp_path):
    text = STACK.replace("max-depth: 6", "max depth: 6")
    assert validate(kfgen, tmp_path, text) == (2, [
        "stack.yaml:22:45: spec.workloads.pipelines.nightly.parameters.max depth: 'max depth' is not a valid name: expected a "
        "parameter name as Argo allows it: letters, digits, '_' and '-' (e.g. learning_rate, max-depth)"])


def test_an_unquoted_version(kfgen, tmp_path):
    assert validate(kfgen, tmp_path, STACK.replace('kubernetesVersion: "1.31"', "kubernetesVersion: 1.30")) == (2, [
        "stack.yaml:5:22: spec.kubernetesVersion: expected a string, got 1.3 (YAML reads 1.30 as the number 1.3): quote it, \"1.30\""])


def test_a_pipeline_cycle_names_its_steps(kfgen, tmp_path):
    text = STACK.replace("prep: {command: [prep]}", "prep: {command: [prep], inputs: [train]}")
    assert validate(kfgen, tmp_path, text) == (2, [
        "stack.yaml:23:9: spec.workloads.pipelines.nightly.steps: the steps' inputs form a cycle: train -> prep -> train (each reads "
        "the one before); remove 'train' from the inputs of 'prep', or another input of the cycle"])


def test_an_unknown_cloud_is_one_problem(kfgen, tmp_path):
    env = textwrap.indent(textwrap.dedent("""\
        prod:
          cloud: gcp
          identity: {default: ml@acme.iam.gserviceaccount.com}
          artifacts: {bucket: artifacts}
          accelerators: {gpu: {type: nvidia-l4}}
          overrides: {workloads: {serving: {iris: {accelerator: gpu}}}}
    """), "    ")
    text = STACK.replace("  workloads:\n", env + "  workloads:\n", 1)
    assert validate(kfgen, tmp_path, text) == (2, [
        "stack.yaml:15:14: spec.environments.prod.cloud: no cloud profile 'gcp' (known: aks, eks, gke, kind)"])


def test_every_problem_at_once(kfgen, tmp_path):
    text = (STACK.replace("      iris: {modelUri: gs://models/iris}", "      iris: {modelUri: gs://models/iris, acelerator: gpu}")
            .replace("          train: {command: [train], inputs: [prep]}", "          train: {command: [train], inputs: [prep], accelerator: gpu}")
            .replace("      cloud: kind\n", "      cloud: kind\n      exposure: public\n"))
    assert validate(kfgen, tmp_path, text) == (2, [
        "stack.yaml:13:17: spec.environments.dev.exposure: 'public' is not one of: internal, external",
        "stack.yaml:17:42: spec.workloads.serving.iris.acelerator: unknown key 'acelerator' (did you mean 'accelerator'?)",
        "stack.yaml:26:66: spec.workloads.pipelines.nightly.steps.train.accelerator: accelerator class 'gpu' is not offered by "
        "environment 'dev' (it offers: none)",
    ])


def test_a_problem_the_schema_found_is_not_reported_again_by_the_rules(kfgen, tmp_path):
    text = STACK.replace("iris: {modelUri: gs://models/iris}", "iris: {modelUri: gs://models/iris, server: TENSORFLOW}")
    assert validate(kfgen, tmp_path, text) == (2, [
        "stack.yaml:16:50: spec.workloads.serving.iris.server: 'TENSORFLOW' is not one of: TENSORFLOW_SERVER, SKLEARN_SERVER, "
        "XGBOOST_SERVER, TRITON_SERVER, CUSTOM (did you mean 'TENSORFLOW_SERVER'?)"])


def test_init_with_a_display_name_writes_a_stack_that_validates(kfgen, tmp_path):
    run = kfgen("init", tmp_path / "acme", "--name", "Acme ML")
    assert run.code == 0 and "(named 'acme-ml': a stack's name is a DNS label)" in run.out
    assert "  name: acme-ml\n" in (tmp_path / "acme" / "stack.yaml").read_text()
    assert kfgen("validate", tmp_path / "acme" / "stack.yaml").code == 0


@pytest.mark.parametrize("field, message", [
    ("spec.acceptedRisks.bogus", "spec.acceptedRisks has no field 'bogus'; its fields: environments, reason, risk"),
    ("spec.kubernetesVersion.minor", "spec.kubernetesVersion is a string value, with no fields: 'minor' is not one"),
    ("spec..gitops", "'spec..gitops' has an empty part; write the field's path with single dots, e.g. spec.environments.prod.cloud"),
    ("spec.environments.Prod.cloud", "spec.environments: 'Prod' cannot be a name there (names are like prod); use any valid name, "
                                     "or * (e.g. spec.environments.*)"),
])
def test_explain_refuses_what_it_cannot_resolve(kfgen, field, message):
    run = kfgen("explain", field)
    assert (run.code, run.out, run.err) == (2, "", f"kfgen explain: {message}\n")


def test_explain_finds_a_field_of_a_lists_items(kfgen):
    run = kfgen("explain", "spec.acceptedRisks.risk")
    assert run.code == 0 and run.out.startswith("FIELD: spec.acceptedRisks.risk\nTYPE: enum\n")
