"""The components: the facts that matter, checked on what kfgen renders for the examples."""

from __future__ import annotations

import json

import pytest
from conftest import EXAMPLES, ROOT, copy_stack

from kfgen.components import PACKAGES
from kfgen.render import render
from kfgen.schema import stack_schema
from kfgen.yamlio import load_all

pytestmark = pytest.mark.kustomize  # end to end: renders with the real kustomize


@pytest.fixture(scope="module")
def objects(tmp_path_factory):
    """{example: {env: [objects]}} rendered by the real kustomize."""
    found = {}
    for example in EXAMPLES:
        tmp = tmp_path_factory.mktemp(example.name)
        result = render(copy_stack(example.name, tmp), tmp / "out")
        found[example.name] = {env.name: [o for f in sorted(env.rglob("*.yaml")) for o in load_all(f.read_text())]
                               for env in sorted((result.out / "rendered").iterdir())}
    return found


def all_objects(objects):
    for envs in objects.values():
        for env, objs in envs.items():
            for o in objs:
                yield env, o


def of_kind(objs, kind):
    return [o for o in objs if o["kind"] == kind]


def pod_specs(obj):
    """Every pod spec inside an object (built-ins and the CRs kfgen renders)."""
    spec = obj.get("spec", {})
    if obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        yield spec["template"]["spec"]
    elif obj["kind"] == "TFJob":
        yield from (r["template"]["spec"] for r in spec["tfReplicaSpecs"].values())
    elif obj["kind"] == "SeldonDeployment":
        yield from (c["spec"] for p in spec["predictors"] for c in p.get("componentSpecs", []))
    elif obj["kind"] == "WorkflowTemplate":
        for t in spec["templates"]:
            if "container" in t:
                yield {"containers": [t["container"]]}


def test_the_committed_schema_is_what_the_component_packages_generate():
    """Editors read schemas/stack.schema.json; its component definitions (settings, version enums)
    come from the packages: after changing one, run `python -m kfgen.schema`."""
    committed = json.loads((ROOT / "schemas" / "stack.schema.json").read_text())
    assert committed == stack_schema()
    for name, package in PACKAGES.items():
        version = committed["$defs"][f"component.{name}"]["properties"]["version"]
        assert version["enum"] == [r.version for r in package.releases] and version["default"] == package.releases[0].version


def test_all_five_installs_and_all_four_workload_kinds_render(objects):
    kinds = {o["kind"] for _, o in all_objects(objects)}
    assert {"TFJob", "SeldonDeployment", "WorkflowTemplate", "CronWorkflow", "Mapping"} <= kinds
    names = {o["metadata"]["name"] for _, o in all_objects(objects) if o["kind"] == "Deployment"}
    assert {"workflow-controller", "argo-server", "training-operator", "seldon-controller-manager", "emissary-ingress", "hub", "proxy"} <= names
    profiles = [json.loads(o["data"]["profiles.json"]) for _, o in all_objects(objects) if o["metadata"]["name"] == "hub-config"]
    assert profiles and all(profiles)


def test_every_container_is_pinned_and_has_requests_and_limits(objects):
    for env, obj in all_objects(objects):
        for pod in pod_specs(obj):
            for c in pod.get("containers", []) + pod.get("initContainers", []):
                where = f"{env}: {obj['kind']}/{obj['metadata']['name']}/{c.get('name', 'main')}"
                assert c["resources"]["requests"] and c["resources"]["limits"], where
                if "image" in c:
                    tag = c["image"].rsplit("/", 1)[-1]
                    assert ":" in tag and not tag.endswith(":latest"), where


def test_every_namespaced_object_has_a_namespace_and_namespaces_have_pod_security(objects):
    cluster_kinds = {"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "PriorityClass",
                     "ValidatingWebhookConfiguration", "StorageClass"}
    for env, obj in all_objects(objects):
        assert ("namespace" in obj["metadata"]) == (obj["kind"] not in cluster_kinds), f"{env}: {obj['kind']}/{obj['metadata']['name']}"
        if obj["kind"] == "Namespace":
            assert obj["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] in ("restricted", "baseline")


def test_no_secret_carries_data(objects):
    for env, obj in all_objects(objects):
        if obj["kind"] == "Secret":
            assert not obj.get("data") and not obj.get("stringData"), f"{env}: Secret/{obj['metadata']['name']}"


def test_tfjob_container_is_tensorflow_with_tfjob_port(objects):
    jobs = [o for _, o in all_objects(objects) if o["kind"] == "TFJob"]
    assert jobs
    for job in jobs:
        for replica in job["spec"]["tfReplicaSpecs"].values():
            main = replica["template"]["spec"]["containers"][0]
            assert main["name"] == "tensorflow"
            assert {"containerPort": 2222, "name": "tfjob-port", "protocol": "TCP"} in main["ports"]


def test_every_crd_kfgen_renders_a_resource_of_is_in_the_render(objects):
    for example, envs in objects.items():
        for env, objs in envs.items():
            crds = {(o["spec"]["group"], o["spec"]["names"]["kind"]) for o in of_kind(objs, "CustomResourceDefinition")}
            for obj in objs:
                group = obj["apiVersion"].rpartition("/")[0]
                if "." in group and not group.endswith("k8s.io"):
                    assert (group, obj["kind"]) in crds, f"{example}/{env}: {obj['kind']} has no CRD in the render"


def test_model_routes_point_at_the_seldon_service_that_exists(objects):
    for example, envs in objects.items():
        for env, objs in envs.items():
            sdeps = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in of_kind(objs, "SeldonDeployment")}
            host = of_kind(objs, "Host")[0]["spec"]["hostname"]
            model_mappings = [m for m in of_kind(objs, "Mapping") if m["metadata"]["name"].startswith("model-")]
            assert len(model_mappings) == len(sdeps) > 0
            for m in model_mappings:
                service, port = m["spec"]["service"].rsplit(":", 1)
                name, ns = service.split(".")
                sdep = sdeps[(ns, m["metadata"]["name"].removeprefix("model-"))]
                predictor = sdep["spec"]["predictors"][0]["name"]
                assert name == f"{sdep['metadata']['name']}-{predictor}" and port == "8000"  # Seldon's executor Service
                assert m["spec"]["prefix"].startswith("/models/") and m["spec"]["hostname"] == host
                assert m["metadata"]["namespace"] == ns


def test_seldon_never_writes_its_own_ambassador_mappings(objects):
    for _, obj in all_objects(objects):
        if obj["kind"] == "Deployment" and obj["metadata"]["name"] == "seldon-controller-manager":
            env = {e["name"]: e.get("value") for e in obj["spec"]["template"]["spec"]["containers"][0]["env"]}
            assert env["AMBASSADOR_ENABLED"] == "false"


def test_argo_executor_has_its_minimum_rbac(objects):
    for example, envs in objects.items():
        for env, objs in envs.items():
            templates = of_kind(objs, "WorkflowTemplate")
            sa = {t["spec"]["serviceAccountName"] for t in templates}
            assert sa == {"ml-pipelines"}
            ns = templates[0]["metadata"]["namespace"]
            binding = next(b for b in of_kind(objs, "RoleBinding") if b["metadata"]["name"] == "ml-pipelines-executor")
            assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "ml-pipelines", "namespace": ns}]
            role = next(r for r in of_kind(objs, "Role") if r["metadata"]["name"] == binding["roleRef"]["name"])
            assert role["rules"] == [{"apiGroups": ["argoproj.io"], "resources": ["workflowtaskresults"], "verbs": ["create", "patch"]}]


def test_the_example_pipeline_passes_each_steps_artifact_on(objects):
    (template,) = [o for o in of_kind(objects["example"]["dev"], "WorkflowTemplate") if o["metadata"]["name"] == "iris-classic"]
    tasks = {t["name"]: t for t in template["spec"]["templates"][0]["dag"]["tasks"]}
    assert list(tasks) == ["load", "clean", "split", "train", "evaluate"]
    assert tasks["evaluate"]["arguments"]["artifacts"] == [
        {"from": "{{tasks.split.outputs.artifacts.output}}", "name": "split"},
        {"from": "{{tasks.train.outputs.artifacts.output}}", "name": "train"}]
    cron = of_kind(objects["example"]["prod"], "CronWorkflow")
    assert [c["spec"]["schedules"] for c in cron] == [["0 3 * * *"]]
    assert not of_kind(objects["example"]["dev"], "CronWorkflow")  # dev turns the schedule off


def test_artifact_repository_uses_workload_identity_not_keys(objects):
    cm = next(o for o in objects["example"]["prod"] if o["metadata"]["name"] == "workflow-controller-configmap")
    assert load_all(cm["data"]["artifactRepository"]) == [{"archiveLogs": True, "gcs": {
        "bucket": "acme-ml-artifacts", "keyFormat": "acme-ml/{{workflow.name}}/{{pod.name}}"}}]
    sa = next(o for o in objects["example"]["prod"] if o["kind"] == "ServiceAccount" and o["metadata"]["name"] == "ml-pipelines")
    assert sa["metadata"]["annotations"] == {"iam.gke.io/gcp-service-account": "ml-workloads@acme-prod.iam.gserviceaccount.com"}


def test_a_component_installed_outside_kfgen_keeps_its_resources(kfgen, example, tmp_path):
    text = example.read_text().replace("      version: 1.17.1          # Apache-2.0; 1.18.2 is under the Business Source License\n",
                                       "      version: 1.17.1\n      install: external\n")
    example.write_text(text)
    assert kfgen("render", example, "--out", tmp_path / "out").code == 0
    folder = tmp_path / "out/rendered/prod/seldon-core"
    names = sorted(str(p.relative_to(folder)) for p in folder.rglob("*.yaml"))
    assert names == ["ml/mapping-model-iris.yaml", "ml/networkpolicy-allow-gateway-to-models.yaml", "ml/seldondeployment-iris.yaml",
                     "ml/serviceaccount-ml-serving.yaml"]
    (sdep,) = load_all((folder / "ml/seldondeployment-iris.yaml").read_text())
    assert sdep["metadata"]["annotations"]["argocd.argoproj.io/sync-options"] == "SkipDryRunOnMissingResource=true"


def test_notebooks_are_routed_through_the_gateway(objects):
    for env, objs in objects["example"].items():
        (route,) = [m for m in of_kind(objs, "Mapping") if m["metadata"]["name"] == "jupyterhub"]
        assert route["spec"]["prefix"] == "/notebooks/" and route["spec"]["service"] == "proxy-public.jupyterhub:80"
        assert route["spec"]["allow_upgrade"] == ["websocket"]
        (service,) = [s for s in of_kind(objs, "Service") if s["metadata"]["name"] == "proxy-public"]
        assert service["spec"]["ports"][0]["port"] == 80
        (listener_http, listener_https) = sorted((x["spec"]["port"], x["spec"]["protocol"]) for x in of_kind(objs, "Listener"))
        assert (listener_http, listener_https) == ((8080, "HTTP"), (8443, "HTTPS"))
        (host,) = of_kind(objs, "Host")
        assert host["spec"]["hostname"] == {"dev": "ml.dev.acme.example", "prod": "ml.acme.example"}[env]
        assert host["spec"]["tlsSecret"] == {"name": "ml-acme-example-tls"}


def test_hub_profiles_come_from_the_stack_per_environment(objects):
    profiles = {env: json.loads(next(o for o in objs if o["metadata"]["name"] == "hub-config")["data"]["profiles.json"])
                for env, objs in objects["example"].items()}
    assert [p["slug"] for p in profiles["prod"]] == ["cpu", "tensorflow-gpu"]
    assert [p["slug"] for p in profiles["dev"]] == ["cpu"]  # dev turns the GPU profile off
    gpu = profiles["prod"][1]
    assert gpu["accelerator"] == "gpu" and gpu["kubespawner_override"]["mem_guarantee"] == 8 * 1024 ** 3
    hub = next(o for o in objects["example"]["prod"] if o["metadata"]["name"] == "hub-config")
    assert json.loads(hub["data"]["accelerator.gpu.json"])["extra_resource_limits"] == {"nvidia.com/gpu": "1"}


def test_operator_webhooks_point_at_their_services(objects):
    objs = objects["example"]["prod"]
    hooks = {w["metadata"]["name"]: w["webhooks"][0]["clientConfig"]["service"] for w in of_kind(objs, "ValidatingWebhookConfiguration")}
    assert hooks == {
        "validator.training-operator.kubeflow.org": {"name": "training-operator", "namespace": "kubeflow", "path": "/validate-kubeflow-org-v1-tfjob"},
        "seldon-validating-webhook-configuration-seldon-system": {"name": "seldon-webhook-service", "namespace": "seldon-system",
                                                                  "path": "/validate-machinelearning-seldon-io-v1-seldondeployment"},
    }
    services = {(s["metadata"]["namespace"], s["metadata"]["name"]) for s in of_kind(objs, "Service")}
    assert {(h["namespace"], h["name"]) for h in hooks.values()} <= services
    assert all("caBundle" not in w["webhooks"][0]["clientConfig"] for w in of_kind(objs, "ValidatingWebhookConfiguration"))
