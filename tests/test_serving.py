"""Serving features (kfgen/components/seldon_core): autoscaling as Seldon's hpaSpec, traffic split
between versions of a model with their weighted routes, and a TensorFlow Serving that can load what
the trainers export. Rules at plan level (in memory); the accelerator patches of every predictor and
the whole render with the real kustomize, checked against the upstream SeldonDeployment CRD."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import SHARED, copy_stack, edit
from in_memory import plan_of

from kfgen.errors import InputError
from kfgen.render import render
from kfgen.rendered import rendered_objects
from kfgen.yamlio import dump, load

STACK = """\
apiVersion: kfgen.io/v1alpha1
kind: Stack
metadata: {{name: t}}
spec:
  gitops: {{repoURL: https://example.com/r.git}}
  components:
    ambassador: {{hostname: ml.example.com}}
    jupyterhub: {{auth: {{type: github, allowedUsers: [alice]}}}}
{seldon}
  environments:
    dev: {{cloud: kind}}
  workloads:
{training}
    serving:
      iris:
        modelUri: gs://models/iris
{model}
"""


def stack(model: str = "", training: str = "", seldon: str = "") -> str:
    return STACK.format(model=model, training=training, seldon=seldon)


def problems(text: str) -> list[str]:
    with pytest.raises(InputError) as info:
        plan_of(text)
    return info.value.lines()


def base(tree: dict[str, str], path: str) -> dict:
    return load(tree[f"base/{path}"])


def test_autoscaling_is_seldons_hpa_spec_on_cpu_by_default_and_on_a_pod_metric(tmp_path):
    _, tree = plan_of(stack("        autoscaling: {maxReplicas: 5}"))
    (component,) = base(tree, "seldon-core/ml/seldondeployment-iris.yaml")["spec"]["predictors"][0]["componentSpecs"]
    assert component["hpaSpec"] == {"maxReplicas": 5, "minReplicas": 1, "metricsv2": [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]}
    _, tree = plan_of(stack("        autoscaling: {minReplicas: 2, maxReplicas: 8, metric: {name: requests_per_second, averageValue: 100}}"))
    (component,) = base(tree, "seldon-core/ml/seldondeployment-iris.yaml")["spec"]["predictors"][0]["componentSpecs"]
    assert component["hpaSpec"]["metricsv2"] == [
        {"type": "Pods", "pods": {"metric": {"name": "requests_per_second"}, "target": {"type": "AverageValue", "averageValue": "100"}}}]
    assert problems(stack("        autoscaling: {minReplicas: 6, maxReplicas: 5}")) == [
        "stack.yaml:17:36: spec.workloads.serving.iris.autoscaling.minReplicas: minReplicas 6 is more than maxReplicas 5"]


def test_a_canary_and_a_shadow_are_predictors_with_weighted_and_mirrored_routes():
    _, tree = plan_of(stack("        versions:\n          stable: {traffic: 90}\n          canary: {modelUri: gs://models/iris-v2, traffic: 10}\n"
                            "          mirror: {modelUri: gs://models/iris-v3, shadow: true}"))
    predictors = base(tree, "seldon-core/ml/seldondeployment-iris.yaml")["spec"]["predictors"]
    assert [(p["name"], p["graph"]["modelUri"], p.get("traffic"), p.get("shadow")) for p in predictors] == [
        ("canary", "gs://models/iris-v2", 10, None), ("stable", "gs://models/iris", 90, None), ("mirror", "gs://models/iris-v3", None, True)]
    routes = {name: base(tree, f"seldon-core/ml/mapping-model-iris-{name}.yaml")["spec"] for name in ("stable", "canary", "mirror")}
    assert {n: (r["prefix"], r["service"], r.get("weight"), r.get("shadow")) for n, r in routes.items()} == {
        "stable": ("/models/iris/", "iris-stable.ml:8000", 90, None), "canary": ("/models/iris/", "iris-canary.ml:8000", 10, None),
        "mirror": ("/models/iris/", "iris-mirror.ml:8000", None, True)}


@pytest.mark.parametrize("versions, message", [
    ("stable: {traffic: 80}\n          canary: {traffic: 10}",
     "stack.yaml:18:11: spec.workloads.serving.iris.versions: the versions' traffic adds up to 90 (canary 10, stable 80); it must add up to 100"),
    ("stable: {traffic: 100}\n          a: {shadow: true}\n          b: {shadow: true}",
     "stack.yaml:20:23: spec.workloads.serving.iris.versions.b.shadow: at most one version is a shadow; 'a' already is"),
    ("stable: {traffic: 100}\n          mirror: {shadow: true, traffic: 5}",
     "stack.yaml:19:43: spec.workloads.serving.iris.versions.mirror.traffic: a shadow gets a copy of every request: it takes no traffic of its own"),
])
def test_traffic_split_rules(versions, message):
    assert problems(stack(f"        versions:\n          {versions}")) == [message]


def test_tensorflow_serving_is_modern_and_at_least_the_trainers_tensorflow():
    _, tree = plan_of(stack())
    servers = json.loads(base(tree, "seldon-core/seldon-system/configmap-seldon-config.yaml")["data"]["predictor_servers"])
    assert servers["TENSORFLOW_SERVER"]["protocols"]["tensorflow"] == {"defaultImageVersion": "2.21.0", "image": "docker.io/tensorflow/serving"}
    job = ("    training:\n      iris:\n        image: tensorflow/tensorflow:2.22.1\n        command: [python, train.py]\n"
           "        replicas: {Worker: 1}\n        modelDir: gs://models/iris\n")
    assert problems(stack(training=job)) == [
        "stack.yaml:7:5: spec.components.seldon-core.tfServingVersion: TensorFlow Serving 2.21.0 cannot load what training job 'iris' "
        "exports with TensorFlow 2.22 (model 'iris', environment 'dev'); set tfServingVersion to 2.22.0 or newer"]
    plan_of(stack(training=job, seldon='    seldon-core: {tfServingVersion: "2.22.0"}'))  # the fix the message names


@pytest.fixture(scope="module")
def split_prod(tmp_path_factory):
    """The example with a canary and a shadow of its GPU model in prod, rendered by the real kustomize."""
    tmp = tmp_path_factory.mktemp("serving")
    example = copy_stack("example", tmp)
    edit(example, "        modelUri: gs://acme-ml-models/iris\n        accelerator: gpu\n",
         "        modelUri: gs://acme-ml-models/iris\n        accelerator: gpu\n        autoscaling: {maxReplicas: 4}\n"
         "        versions:\n          stable: {traffic: 95}\n          canary: {modelUri: gs://acme-ml-models/iris-v2, traffic: 5}\n"
         "          mirror: {modelUri: gs://acme-ml-models/iris-v3, shadow: true}\n")
    out = render(example, tmp / "out").out
    return out, rendered_objects(out, "prod")


@pytest.mark.kustomize
def test_every_predictor_gets_the_accelerator_and_the_gpu_server(split_prod):
    _, objects = split_prod
    (sdep,) = [o for o in objects if o["kind"] == "SeldonDeployment"]
    for predictor in sdep["spec"]["predictors"]:
        pod = predictor["componentSpecs"][0]["spec"]
        assert pod["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4", "kubernetes.io/os": "linux"}, predictor["name"]
        (server,) = pod["containers"]
        assert server["image"] == "docker.io/tensorflow/serving:2.21.0-gpu", predictor["name"]
        assert server["resources"]["limits"]["nvidia.com/gpu"] == server["resources"]["requests"]["nvidia.com/gpu"] == "1"


@pytest.mark.kustomize
def test_the_split_render_is_valid_against_the_upstream_crds(split_prod, tmp_path):
    out, objects = split_prod
    if not (SHARED / "tools" / "upstream_check.py").is_file():
        pytest.skip("../shared is not beside the repository")
    folder = tmp_path / "objects"
    folder.mkdir()
    for i, o in enumerate(o for o in objects if o["kind"] in ("SeldonDeployment", "Mapping")):
        (folder / f"{i}.yaml").write_text(dump(o))
    done = subprocess.run([sys.executable, str(SHARED / "tools" / "upstream_check.py"), str(folder), "--k8s", "1.31"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


PSA = "pod-security.kubernetes.io/"


def pod_security(namespace: dict) -> dict:
    labels = namespace["metadata"]["labels"]
    return {k.removeprefix(PSA): v for k, v in labels.items() if k.startswith(PSA)}


def test_a_namespace_that_serves_models_enforces_baseline_and_still_audits_and_warns_at_restricted():
    """Seldon's manager adds its executor and model initializer to each model's pods with security contexts
    `restricted` refuses (upstream's operator/controllers at v1.17.1 and v1.18.2: see deviations.py)."""
    _, tree = plan_of(stack())
    namespace = base(tree, "workloads/cluster/namespace-ml.yaml")
    assert pod_security(namespace) == {"enforce": "baseline", "enforce-version": "latest", "audit": "restricted", "warn": "restricted"}
    assert namespace["metadata"]["annotations"]["kfgen.io/pod-security-reason"].startswith(
        "Seldon Core v1's manager adds containers to each model's pods that the `restricted` level refuses")
    # only the workload namespace: the operators' own namespaces keep enforcing restricted
    for path in [p for p in tree if p.startswith("base/") and "/namespace-" in p and p != "base/workloads/cluster/namespace-ml.yaml"]:
        assert pod_security(load(tree[path]))["enforce"] == "restricted", path


def test_a_workload_namespace_without_models_enforces_restricted():
    _, tree = plan_of(stack("        enabled: false"))
    namespace = base(tree, "workloads/cluster/namespace-ml.yaml")
    assert pod_security(namespace) == {"enforce": "restricted", "enforce-version": "latest", "audit": "restricted", "warn": "restricted"}
    assert "kfgen.io/pod-security-reason" not in namespace["metadata"]["annotations"]


@pytest.mark.kustomize
def test_an_environment_that_serves_no_model_enforces_restricted(tmp_path):
    path = tmp_path / "stack.yaml"
    path.write_text(stack().replace("    dev: {cloud: kind}\n",
                                    "    dev: {cloud: kind}\n    test: {cloud: kind, overrides: {workloads: {serving: {iris: {enabled: false}}}}}\n"))
    out = render(path, tmp_path / "out").out
    levels = {env: {pod_security(o)["enforce"] for o in rendered_objects(out, env) if o["kind"] == "Namespace" and o["metadata"]["name"] == "ml"}
              for env in ("dev", "test")}
    assert levels == {"dev": {"baseline"}, "test": {"restricted"}}
