"""Proof 2: custom resources round-trip as their controllers write them, under kfgen's CRDs exactly as
under upstream's.

Each scenario starts from an object of the render, then writes it the way the upstream controller
of the pinned version does (plain update, merge patch, or the status subresource), with a status
shaped like the one it writes, and reads it back. The same writes run twice on a cluster cleaned in
between: under the render's CRDs, and under the upstream CRDs in ../shared/upstream-crds (the
minimal Argo CRDs are what upstream's install applies). Any difference is a defect in kfgen's CRD.

Emissary's objects are not here: upstream's Emissary CRDs store v2 through a conversion webhook
(emissary-apiext) that cannot run without Envoy; proof 1 covers kfgen's v3alpha1 objects.
"""

from __future__ import annotations

import copy
import json

import pytest

from .argocd_sync import load_folder
from .conftest import UPSTREAM, ident, upstream_crds
from .controlplane import MERGE, ApiError

T0, T1 = "2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z"
IGNORED_METADATA = ("uid", "resourceVersion", "creationTimestamp", "managedFields")

def _rendered(synced_objects: list[dict], kind: str) -> dict | None:
    return next((o for o in synced_objects if o["kind"] == kind), None)


def _create(api, obj: dict) -> dict:
    body = {k: v for k, v in obj.items() if k != "status"}
    body["metadata"] = {k: v for k, v in obj["metadata"].items() if k in ("name", "namespace", "labels", "annotations")}
    return api.request("POST", api.path(body, collection=True), body)


def workflow(api, base: dict) -> list[dict]:
    """The Workflow controller persists a workflow with a plain Update of the whole object, status
    included (workflow/controller/operator.go:763, persistUpdates, v3.6.19)."""
    wf = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
          "metadata": {"name": f"{base['metadata']['name']}-run", "namespace": base["metadata"]["namespace"],
                       "labels": {"workflows.argoproj.io/workflow-template": base["metadata"]["name"]}},
          "spec": {"workflowTemplateRef": {"name": base["metadata"]["name"]}}}
    stored = _create(api, wf)
    node = f"{wf['metadata']['name']}-1234567890"
    stored["metadata"]["labels"]["workflows.argoproj.io/phase"] = "Running"
    stored["status"] = {
        "phase": "Running", "startedAt": T0, "finishedAt": None, "progress": "0/1",
        "artifactRepositoryRef": {"default": True, "artifactRepository": {"s3": {"bucket": "b", "endpoint": "minio:9000"}}},
        "nodes": {node: {"id": node, "name": f"{wf['metadata']['name']}[0].step", "displayName": "step", "type": "Pod",
                         "templateName": base["spec"].get("entrypoint", "main"), "phase": "Pending", "startedAt": T0,
                         "boundaryID": wf["metadata"]["name"], "progress": "0/1",
                         "inputs": {"parameters": [{"name": "p", "value": "1"}]}}},
        "conditions": [{"type": "PodRunning", "status": "False"}],
        "storedTemplates": {}, "taskResultsCompletionStatus": {node: False},
    }
    updated = api.request("PUT", api.path(stored), stored)
    return [updated, api.get(updated)]


def cron_workflow(api, base: dict) -> list[dict]:
    """The CronWorkflow controller merge-patches status with metadata (workflow/cron/operator.go:165-180,
    persistUpdate, v3.6.19)."""
    cron = copy.deepcopy(base)
    _create(api, cron)
    patch = {"status": {"active": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "name": f"{cron['metadata']['name']}-1767225600",
                                    "namespace": cron["metadata"]["namespace"], "uid": "00000000-0000-0000-0000-000000000001",
                                    "resourceVersion": "1"}],
                        "lastScheduledTime": T0, "conditions": [], "succeeded": 0, "failed": 0, "phase": "Active"},
             "metadata": {"annotations": {"cronworkflows.argoproj.io/last-used-schedule": "CRON_TZ=UTC 0 3 * * *"},
                          "labels": dict(cron["metadata"].get("labels") or {})}}
    patched = api.request("PATCH", api.path(cron), patch, content_type=MERGE)
    return [patched, api.get(patched)]


def task_result(api, base: dict) -> list[dict]:
    """The executor creates the WorkflowTaskResult with the node's result at the top level, then
    merge-patches it and its labels (workflow/executor/taskresult.go:14-75, v3.6.19)."""
    namespace = base["metadata"]["namespace"]
    name = "wf-run-1234567890"
    result = {"apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowTaskResult",
              "metadata": {"name": name, "namespace": namespace,
                           "labels": {"workflows.argoproj.io/workflow": "wf-run", "workflows.argoproj.io/report-outputs-completed": "false"}},
              "phase": "Running", "progress": "0/1",
              "outputs": {"parameters": [{"name": "accuracy", "value": "0.97", "valueFrom": {"path": "/tmp/accuracy"}}],
                          "artifacts": [{"name": "model", "path": "/tmp/model", "s3": {"key": "wf-run/model.tgz"}}],
                          "result": "ok", "exitCode": "0"}}
    api.request("POST", api.path(result, collection=True), result)
    obj = {"apiVersion": result["apiVersion"], "kind": result["kind"], "metadata": {"name": name, "namespace": namespace}}
    api.request("PATCH", api.path(obj), {"phase": "Succeeded", "message": "done", "progress": "1/1"}, content_type=MERGE)
    patched = api.request("PATCH", api.path(obj), {"metadata": {"labels": {"workflows.argoproj.io/report-outputs-completed": "true"}}},
                          content_type=MERGE)
    return [patched, api.get(patched)]


def task_set(api, base: dict) -> list[dict]:
    """The controller creates a WorkflowTaskSet and merge-patches its spec (workflow/controller/taskset.go:27,
    217); the agent merge-patches its status through /status (workflow/executor/agent.go:196, v3.6.19)."""
    namespace = base["metadata"]["namespace"]
    node = "wf-run-2345678901"
    taskset = {"apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowTaskSet",
               "metadata": {"name": "wf-run", "namespace": namespace, "labels": {"workflows.argoproj.io/controller-instanceid": ""}},
               "spec": {"tasks": {node: {"name": "call", "http": {"url": "http://example.invalid/"}}}}}
    api.request("POST", api.path(taskset, collection=True), taskset)
    api.request("PATCH", api.path(taskset), {"spec": {"tasks": {node: {"name": "call", "http": {"url": "http://example.invalid/",
                                                                                              "method": "GET"}}}}},
                content_type=MERGE)
    patched = api.request("PATCH", api.path(taskset) + "/status",
                          {"status": {"nodes": {node: {"phase": "Succeeded", "message": "200",
                                                       "outputs": {"parameters": [{"name": "result", "value": "ok"}]}}}}},
                          content_type=MERGE)
    return [patched, api.get(patched)]


def tfjob(api, base: dict) -> list[dict]:
    """The training operator writes status through the status subresource (Status().Update in
    pkg/controller.v1/tensorflow/tfjob_controller.go:542, UpdateJobStatusInApiServer, v1.8.1)."""
    stored = _create(api, base)
    replica_types = list(base["spec"]["tfReplicaSpecs"])
    stored["status"] = {
        "conditions": [{"type": "Created", "status": "True", "reason": "TFJobCreated", "message": "TFJob is created.",
                        "lastUpdateTime": T0, "lastTransitionTime": T0},
                       {"type": "Running", "status": "True", "reason": "TFJobRunning", "message": "TFJob is running.",
                        "lastUpdateTime": T1, "lastTransitionTime": T1}],
        "replicaStatuses": {t: {"active": 1, "selector": f"training.kubeflow.org/job-name={base['metadata']['name']},"
                                                         f"training.kubeflow.org/replica-type={t.lower()}"} for t in replica_types},
        "startTime": T0, "lastReconcileTime": T1,
    }
    updated = api.request("PUT", api.path(stored) + "/status", stored)
    return [updated, api.get(updated)]


def seldon_deployment(api, base: dict) -> list[dict]:
    """The Seldon operator writes status through the status subresource (r.Status().Update in
    operator/controllers/seldondeployment_controller.go:2181, v1.17.1)."""
    stored = _create(api, base)
    name, namespace = base["metadata"]["name"], base["metadata"]["namespace"]
    predictor = base["spec"]["predictors"][0]["name"]
    stored["status"] = {
        "state": "Available", "replicas": 1, "description": "",
        "address": {"url": f"http://{name}-{predictor}.{namespace}.svc.cluster.local:8000/api/v1.0/predictions"},
        "deploymentStatus": {f"{name}-{predictor}-0-model": {"name": f"{name}-{predictor}-0-model", "replicas": 1, "availableReplicas": 1}},
        "serviceStatus": {f"{name}-{predictor}": {"svcName": f"{name}-{predictor}", "httpEndpoint": f"{name}-{predictor}.{namespace}:8000",
                                                  "grpcEndpoint": f"{name}-{predictor}.{namespace}:5001"}},
        "conditions": [{"type": "DeploymentsReady", "status": "True", "reason": "All deployments are ready",
                        "lastTransitionTime": T0}],
    }
    updated = api.request("PUT", api.path(stored) + "/status", stored)
    return [updated, api.get(updated)]


SCENARIOS = [  # (name, kind of the rendered object it starts from, writer)
    ("Workflow (plain update)", "WorkflowTemplate", workflow),
    ("CronWorkflow (merge patch)", "CronWorkflow", cron_workflow),
    ("WorkflowTaskResult (create, merge patch)", "WorkflowTemplate", task_result),
    ("WorkflowTaskSet (merge patch, status subresource)", "WorkflowTemplate", task_set),
    ("TFJob (status subresource)", "TFJob", tfjob),
    ("SeldonDeployment (status subresource)", "SeldonDeployment", seldon_deployment),
]


def comparable(obj: dict) -> dict:
    out = copy.deepcopy(obj)
    for key in IGNORED_METADATA:
        out["metadata"].pop(key, None)
    return out


def run_scenarios(cluster, crds: list[dict], synced_objects: list[dict]) -> dict[str, object]:
    """Install CRDs into a clean cluster, run every scenario; {scenario: [responses, read back] or the error}."""
    cluster.clean()
    cluster.dirty()
    applier = cluster.applier("scenario-install")
    applier.apply(crds)
    namespaces = sorted({o["metadata"]["namespace"] for o in synced_objects if o["kind"] in {k for _, k, _ in SCENARIOS}})
    applier.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}} for ns in namespaces])
    # A WorkflowTemplate the Workflow refers to.
    applier.apply([o for o in synced_objects if o["kind"] == "WorkflowTemplate"])
    out: dict[str, object] = {}
    for name, kind, write in SCENARIOS:
        base = _rendered(synced_objects, kind)
        if base is None:
            continue
        try:
            out[name] = [comparable(o) for o in write(cluster.api, copy.deepcopy(base))]
        except ApiError as error:
            out[name] = f"refused: {error}"
    return out


@pytest.fixture(scope="module")
def both(cluster, renders):
    """{stack: (under kfgen's CRDs, under upstream's CRDs)} for each example (objects of all its
    environments, the first of each name: the CronWorkflow is only in one)."""
    out = {}
    for stack, render in sorted(renders.items()):
        unique: dict[tuple, dict] = {}
        for obj in load_folder(render / "rendered"):
            unique.setdefault((obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"]), obj)
        objects = list(unique.values())
        groups = set(UPSTREAM)
        kfgen_crds = [o for o in objects if o["kind"] == "CustomResourceDefinition" and o["spec"]["group"] in groups]
        out[stack] = (run_scenarios(cluster, kfgen_crds, objects), run_scenarios(cluster, upstream_crds(), objects))
    cluster.clean()
    return out


@pytest.mark.parametrize("scenario", [name for name, _, _ in SCENARIOS])
def test_controller_writes_round_trip_as_under_upstream_crds(both, scenario):
    compared = 0
    for stack, (kfgen, upstream) in sorted(both.items()):
        if scenario not in upstream:
            continue
        compared += 1
        assert not isinstance(upstream[scenario], str), f"{stack}: under upstream's CRDs: {upstream[scenario]}"
        ours, theirs = kfgen[scenario], upstream[scenario]
        assert ours == theirs, f"{stack}: {scenario} differs from upstream:\n" + diff(theirs, ours)
    if not compared:
        pytest.skip(f"no example renders the object {scenario} starts from")


def test_the_scenarios_write_status(both):
    """The comparison means something: under upstream's CRDs each write keeps the status it sent."""
    for stack, (_, upstream) in sorted(both.items()):
        for name, result in upstream.items():
            assert not isinstance(result, str), f"{stack}: {name}: {result}"
            stored = result[-1]
            written = stored.get("status") or {k: stored[k] for k in ("outputs", "phase") if k in stored}
            assert written, f"{stack}: {name}: nothing of the controller's write was kept: {ident(stored)}"


def diff(theirs: object, ours: object) -> str:
    import difflib

    a = json.dumps(theirs, indent=1, sort_keys=True).splitlines()
    b = json.dumps(ours, indent=1, sort_keys=True).splitlines()
    return "\n".join(difflib.unified_diff(a, b, "upstream CRDs", "kfgen CRDs", lineterm="", n=2))
