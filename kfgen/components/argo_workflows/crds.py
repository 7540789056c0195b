"""The eight CRDs Argo Workflows' controller watches, in upstream's "minimal" shape."""

from __future__ import annotations

from kfgen.components.crd import PRESERVE, STRING, array, crd, props

_ARGO = [
    ("Workflow", "workflows", ["wf"], ["spec"]),
    ("WorkflowTemplate", "workflowtemplates", ["wftmpl"], ["spec"]),
    ("CronWorkflow", "cronworkflows", ["cwf", "cronwf"], ["spec"]),
    ("ClusterWorkflowTemplate", "clusterworkflowtemplates", ["clusterwftmpl", "cwft"], ["spec"]),
    ("WorkflowEventBinding", "workfloweventbindings", ["wfeb"], ["spec"]),
    ("WorkflowTaskSet", "workflowtasksets", ["wfts"], ["spec"]),
    ("WorkflowTaskResult", "workflowtaskresults", [], []),
    ("WorkflowArtifactGCTask", "workflowartifactgctasks", ["wfat"], ["spec"]),
]


# As upstream's CRDs: a status field only where the controller keeps one, a status subresource only
# on the kinds it writes through /status (the Workflow and CronWorkflow controllers write .status with
# plain updates and merge patches, which a subresource would drop), printer columns only on Workflow.
STATUS = ("Workflow", "CronWorkflow", "WorkflowTaskSet", "WorkflowArtifactGCTask")
STATUS_SUBRESOURCE = ("WorkflowTaskSet", "WorkflowArtifactGCTask")
# A WorkflowTaskResult is the executor's report: its outputs, phase, message and progress at the root.
TASK_RESULT = {"message": STRING, "outputs": PRESERVE, "phase": STRING, "progress": STRING}
WORKFLOW_COLUMNS = [
    {"description": "Status of the workflow", "jsonPath": ".status.phase", "name": "Status", "type": "string"},
    {"description": "When the workflow was started", "format": "date-time", "jsonPath": ".status.startedAt", "name": "Age", "type": "date"},
    {"description": "Human readable message indicating details about why the workflow is in this condition.",
     "jsonPath": ".status.message", "name": "Message", "type": "string"},
]


def argo_crds() -> list[dict]:
    out = []
    for kind, plural, short, required in _ARGO:
        scope = "Cluster" if kind == "ClusterWorkflowTemplate" else "Namespaced"
        spec = PRESERVE
        if kind in ("WorkflowTemplate", "ClusterWorkflowTemplate", "Workflow"):
            spec = props({"entrypoint": STRING, "serviceAccountName": STRING, "templates": array(props({"name": STRING}, preserve=True))},
                         preserve=True)
        elif kind == "CronWorkflow":
            spec = props({"schedule": STRING, "schedules": array(STRING), "timezone": STRING, "concurrencyPolicy": STRING,
                          "workflowSpec": PRESERVE}, required=["workflowSpec"], preserve=True)
        out.append(crd("argoproj.io", kind, plural, spec, version="v1alpha1", scope=scope, short_names=short or None,
                       status=kind in STATUS, status_subresource=kind in STATUS_SUBRESOURCE,
                       columns=WORKFLOW_COLUMNS if kind == "Workflow" else None, required=["metadata", *required],
                       top_level=TASK_RESULT if kind == "WorkflowTaskResult" else None))
    return out
