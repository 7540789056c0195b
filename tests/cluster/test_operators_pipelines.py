"""The platform comes up (issue 12): Argo's workflow-controller, run as rendered, runs the render's pipelines.

The controller runs from the locally built binary (v3.6.18, see build.py) with its rendered
Deployment's args (the executor image), env, ServiceAccount and namespace; it reads the rendered
`workflow-controller-configmap` from the API as in a cluster (operators.py). Nothing is moved: its
health port 6060 is fixed in cmd/workflow-controller/main.go and its metrics port 9090 is the
rendered ConfigMap's (the default); no other operator of this tier uses either.

Workflows are made as upstream makes them (argo-workflows v3.6.18, paths at the tag):
- from a WorkflowTemplate as `argo submit --from workflowtemplate/NAME` does
  (workflow/common/convert.go, NewWorkflowFromWorkflowTemplate: generateName `NAME-`, the
  `workflows.argoproj.io/workflow-template` label, spec.workflowTemplateRef). A WorkflowTemplate
  without an entrypoint is a library: it runs through the pipelines that refer to it (templateRef),
  and the test checks that every one did;
- from a CronWorkflow as its controller does when a schedule fires (workflow/cron/operator.go:122,
  ConvertCronWorkflowToWorkflowWithProperties: name `<cron>-<scheduled unix time>`, the
  scheduled-time annotation, the cron-workflow label, the CronWorkflow as controller owner), created
  with the controller's own ServiceAccount. The rendered schedules (nightly) are not waited for.

Each step's pod is then played as its executor and kubelet would play it: the wait container's
WorkflowTaskResult created (labels `workflows.argoproj.io/workflow` and
`workflows.argoproj.io/report-outputs-completed: "false"`, named after the node, ARGO_NODE_ID, owned
by the Workflow), merge-patched with the outputs, then labelled completed (workflow/executor/
taskresult.go, executor.go:808-866, cmd/argoexec/commands/wait.go), with the pod's own
ServiceAccount token, so the executor's RBAC applies; the output artifacts keyed as
saveArtifactFromFile keys them (the template's archive location key + `<name>.tgz`, and the main
container's log `main.log` when the repository archives logs); then the pod reported Succeeded
(pods/status). The controller must move on: the next step's pod is created, its input artifacts
the outputs reported, until the workflow Succeeds.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import pytest

from . import build
from .controlplane import MERGE, ApiError
from .operators import Operators, pod_path

DEPLOYMENT = "workflow-controller"
GROUP = "/apis/argoproj.io/v1alpha1"
WORKFLOW_LABEL = "workflows.argoproj.io/workflow"
COMPLETED_LABEL = "workflows.argoproj.io/report-outputs-completed"
SCHEDULED = 1798765200  # 2027-01-01T01:00:00Z, a made-up scheduled run


@dataclass
class Run:
    """One workflow driven step by step: where it came from, the pods played in order, what went wrong."""

    source: str
    workflow: dict
    pods: list[dict] = field(default_factory=list)
    first_node: dict | None = None  # the node of the first pod, as the workflow's stored status had it then
    outputs: dict[str, dict] = field(default_factory=dict)  # node id -> outputs reported
    stored: dict = field(default_factory=dict)  # the workflow as last read
    problems: list[str] = field(default_factory=list)

    @property
    def phase(self) -> str | None:
        return (self.stored.get("status") or {}).get("phase")


@pytest.fixture(scope="module")
def pipelines(cluster, environment, tmp_path_factory):
    """The controller running as rendered; a workflow of each WorkflowTemplate with an entrypoint and
    of each CronWorkflow, all driven side by side until they end (the controller requeues a workflow
    10 s after a pod changes, its default: one step at a time would take minutes)."""
    synced = cluster.synced(*environment)
    if not [o for o in synced.objects if o["kind"] in ("WorkflowTemplate", "CronWorkflow")]:
        pytest.skip("no pipelines in this environment")
    with Operators(cluster, synced, tmp_path_factory.mktemp("pipelines")) as operators:
        operator = operators.start(DEPLOYMENT, build.binary("workflow-controller"))
        deployment = operator.deployment
        controller = operators.cluster.plane.api_as(deployment["metadata"]["namespace"],
                                                    deployment["spec"]["template"]["spec"]["serviceAccountName"])
        runs = [Run(f"WorkflowTemplate {t['metadata']['name']}", submitted(operators.api, t))
                for t in operators.rendered("WorkflowTemplate") if t["spec"].get("entrypoint")]
        runs += [Run(f"CronWorkflow {c['metadata']['name']}", scheduled(operators.api, controller, c))
                 for c in operators.rendered("CronWorkflow")]
        drive(operators, operator, runs)
        yield operators, operator, runs


def drive(operators: Operators, operator, runs: list[Run], seconds: float = 300) -> None:
    """Play each new pod of every run until each workflow ends; what goes wrong is kept in the run."""
    deadline = time.monotonic() + seconds
    active = list(runs)
    while active:
        if not operator.process.alive():
            for run in active:
                run.problems.append(f"the controller exited: {operator.process.tail()}")
            return
        for run in list(active):
            try:
                if step(operators, run):
                    active.remove(run)
            except (AssertionError, ApiError) as error:
                run.problems.append(str(error))
                active.remove(run)
        if time.monotonic() > deadline:
            for run in active:
                run.problems.append(f"{run.source}: not ended after {seconds}s, {len(run.pods)} steps played, phase {run.phase}")
            return
        time.sleep(0.5)


def step(operators: Operators, run: Run) -> bool:
    """Play the run's next pod if there is one; True when the workflow has ended."""
    api = operators.api
    run.stored = api.get(run.workflow)
    status = run.stored.get("status") or {}
    if run.phase in ("Succeeded", "Failed", "Error"):
        if run.phase != "Succeeded":
            run.problems.append(f"{run.source}: workflow {run.phase}: {status.get('message')}; "
                                + "; ".join(f"{n['displayName']} {n['phase']} {n.get('message', '')}" for n in status.get("nodes", {}).values()))
        return True
    namespace, name = run.workflow["metadata"]["namespace"], run.workflow["metadata"]["name"]
    seen = {p["metadata"]["name"] for p in run.pods}
    for pod in pods_of(api, namespace, name):
        if pod["metadata"]["name"] in seen:
            continue
        node = env_of(next(c for c in pod["spec"]["containers"] if c["name"] == "wait"))["ARGO_NODE_ID"]
        recorded = (status.get("nodes") or {}).get(node)
        if recorded is None:
            return False  # the controller has not stored the pod's node yet: next round
        if not run.pods:
            run.first_node = recorded
        run.problems += check_inputs(pod, run.outputs)
        run.outputs[node] = play_step(operators, pod)
        run.pods.append(pod)
    return False


def env_of(container: dict) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env") or []}


def pods_of(api, namespace: str, workflow: str) -> list[dict]:
    pods = api.request("GET", f"/api/v1/namespaces/{namespace}/pods", query={"labelSelector": f"{WORKFLOW_LABEL}={workflow}"})["items"]
    return [p for p in pods if "deletionTimestamp" not in p["metadata"]]


def reported_outputs(template: dict) -> dict:
    """The outputs the wait container reports for a template whose main container wrote them all."""
    location = template.get("archiveLocation") or {}
    kind = next((k for k in ("s3", "gcs", "azure", "oss", "artifactory", "hdfs", "http") if k in location), None)
    key_field = "blob" if kind == "azure" else "key"
    key = (location.get(kind) or {}).get(key_field, "")

    def stored(name: str, file: str) -> dict:
        # SetType makes an empty location of the repository's kind, SetKey its key; Go's encoding
        # then writes AzureBlobContainer's endpoint and container, which have no omitempty
        # (pkg/apis/workflow/v1alpha1/workflow_types.go:1219, 2705-2732).
        empty = {"endpoint": "", "container": ""} if kind == "azure" else {}
        return {kind: {**empty, key_field: f"{key}/{file}"}} if kind else {}

    outputs = dict(template.get("outputs") or {})
    artifacts = [{**art, **stored(art["name"], f"{art['name']}.tgz")} for art in outputs.get("artifacts") or []]
    if location.get("archiveLogs"):
        artifacts.append({"name": "main-logs", **stored("main-logs", "main.log")})
    if artifacts:
        outputs["artifacts"] = artifacts
    if outputs.get("parameters"):
        outputs["parameters"] = [{**p, "value": f"{p['name']}-value"} for p in outputs["parameters"]]
    return outputs


def play_step(operators: Operators, pod: dict) -> dict:
    """The executor's and the kubelet's part in one pod; returns the outputs reported."""
    api = operators.api
    namespace = pod["metadata"]["namespace"]
    wait = env_of(next(c for c in pod["spec"]["containers"] if c["name"] == "wait"))
    init = env_of(next(c for c in pod["spec"].get("initContainers") or [] if c["name"] == "init"))
    template = json.loads(init["ARGO_TEMPLATE"])
    executor = operators.cluster.plane.api_as(namespace, pod["spec"].get("serviceAccountName") or "default")
    operators.run_pod(pod)
    node = wait["ARGO_NODE_ID"]
    results = f"{GROUP}/namespaces/{namespace}/workflowtaskresults"
    executor.request("POST", results, {
        "kind": "WorkflowTaskResult", "apiVersion": "argoproj.io/v1alpha1",
        "metadata": {"name": node, "creationTimestamp": None,
                     "labels": {WORKFLOW_LABEL: wait["ARGO_WORKFLOW_NAME"], COMPLETED_LABEL: "false"},
                     "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "name": wait["ARGO_WORKFLOW_NAME"],
                                          "uid": wait["ARGO_WORKFLOW_UID"]}]}})
    outputs = reported_outputs(template)
    executor.request("PATCH", f"{results}/{node}", {"metadata": {"creationTimestamp": None}, "outputs": outputs}, content_type=MERGE)
    executor.request("PATCH", f"{results}/{node}", {"metadata": {"creationTimestamp": None, "labels": {COMPLETED_LABEL: "true"}}},
                     content_type=MERGE)
    operators.finish_pod(api.request("GET", pod_path(pod)))
    return outputs


def check_inputs(pod: dict, outputs: dict[str, dict]) -> list[str]:
    """An input artifact taken from an earlier step's output is where that step reported it."""
    init = env_of(next(c for c in pod["spec"].get("initContainers") or [] if c["name"] == "init"))
    keys = {json.dumps({k: v for k, v in art.items() if k not in ("name", "path")}, sort_keys=True)
            for result in outputs.values() for art in result.get("artifacts") or []}
    problems = []
    for art in json.loads(init["ARGO_TEMPLATE"]).get("inputs", {}).get("artifacts") or []:
        location = {k: v for k, v in art.items() if k in ("s3", "gcs", "azure")}
        if location and json.dumps(location, sort_keys=True) not in keys:
            problems.append(f"{pod['metadata']['name']}: input artifact {art['name']} at {location}, which no earlier step reported")
    return problems


def submitted(api, template: dict) -> dict:
    """A Workflow from a WorkflowTemplate, as `argo submit --from workflowtemplate/NAME` makes it."""
    name = template["metadata"]["name"]
    workflow = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
                "metadata": {"generateName": f"{name}-", "namespace": template["metadata"]["namespace"],
                             "labels": {"workflows.argoproj.io/workflow-template": name}, "annotations": {}},
                "spec": {"workflowTemplateRef": {"name": name}}}
    return api.request("POST", f"{GROUP}/namespaces/{template['metadata']['namespace']}/workflows", workflow)


def scheduled(api, controller_api, cron: dict) -> dict:
    """The Workflow the CronWorkflow controller creates when a schedule fires."""
    stored = api.get(cron)
    name = cron["metadata"]["name"]
    labels = {"workflows.argoproj.io/cron-workflow": name}
    metadata = cron["spec"].get("workflowMetadata") or {}
    labels.update(metadata.get("labels") or {})
    workflow = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
                "metadata": {"name": f"{name}-{SCHEDULED}", "namespace": cron["metadata"]["namespace"], "labels": labels,
                             "annotations": {"workflows.argoproj.io/scheduled-time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(SCHEDULED)),
                                             **(metadata.get("annotations") or {})},
                             "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "CronWorkflow", "name": name,
                                                  "uid": stored["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]},
                "spec": cron["spec"]["workflowSpec"]}
    return controller_api.request("POST", f"{GROUP}/namespaces/{cron['metadata']['namespace']}/workflows", workflow)


def test_the_first_step_of_each_workflow_gets_its_pod_and_the_status_is_stored(pipelines):
    operators, operator, runs = pipelines
    sources = {r.source.split()[0] for r in runs}
    assert "CronWorkflow" in sources or not operators.rendered("CronWorkflow")
    assert "WorkflowTemplate" in sources or not operators.rendered("WorkflowTemplate")
    for run in runs:
        assert run.pods, f"{run.source}: no pod created: {run.problems}"
        assert run.first_node and run.first_node["type"] == "Pod" and run.first_node["phase"] in ("Pending", "Running"), \
            f"{run.source}: first node stored as {run.first_node}"


def test_each_reported_step_moves_the_workflow_on_until_it_succeeds(pipelines):
    operators, operator, runs = pipelines
    for run in runs:
        assert not run.problems, "\n".join(run.problems)
        assert len(run.pods) >= 2, f"{run.source}: {len(run.pods)} step: nothing shows the controller moving on"
        assert run.phase == "Succeeded", f"{run.source}: {run.phase}"


def test_every_workflow_template_ran(pipelines):
    """A WorkflowTemplate without an entrypoint (a library) runs through the pipelines referring to it."""
    operators, operator, runs = pipelines
    ran = {r.workflow["spec"].get("workflowTemplateRef", {}).get("name") for r in runs}
    for run in runs:
        ran |= {key.split("/")[1] for key in ((run.stored.get("status") or {}).get("storedTemplates") or {})}
    libraries = {t["metadata"]["name"] for t in operators.rendered("WorkflowTemplate")} - ran
    assert not libraries, f"WorkflowTemplates no workflow ran: {sorted(libraries)}"


def test_no_forbidden_or_unknown_field_in_its_log(pipelines):
    operators, operator, runs = pipelines
    assert not operator.problems(), "\n".join(operator.problems(0))


def test_the_executor_is_refused_what_it_may_not_do(pipelines):
    """The executor's token is really checked: it may not create pods."""
    operators, operator, runs = pipelines
    pod = runs[0].pods[0] if runs and runs[0].pods else None
    if pod is None:
        pytest.skip("no step ran")
    namespace = pod["metadata"]["namespace"]
    executor = operators.cluster.plane.api_as(namespace, pod["spec"].get("serviceAccountName") or "default")
    with pytest.raises(ApiError) as refused:
        executor.request("POST", f"/api/v1/namespaces/{namespace}/pods",
                         {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "not-allowed"},
                          "spec": {"containers": [{"name": "c", "image": "busybox"}]}}, query={"dryRun": "All"})
    assert refused.value.status == 403
