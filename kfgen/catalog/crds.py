"""CustomResourceDefinitions for the kinds kfgen renders, written by kfgen.

Structural schemas cover the fields kfgen renders; below pod templates (and other places where
users add their own fields through patches) unknown fields are preserved, so the API server's
pruning never drops what a user's patch adds.
"""

from __future__ import annotations

from typing import Any

from kfgen.catalog.objects import meta

Schema = dict[str, Any]

PRESERVE: Schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
STRING: Schema = {"type": "string"}
INTEGER: Schema = {"type": "integer"}
BOOLEAN: Schema = {"type": "boolean"}


def props(properties: dict[str, Schema], required: list[str] | None = None, preserve: bool = False) -> Schema:
    out: Schema = {"type": "object", "properties": dict(sorted(properties.items()))}
    if required:
        out["required"] = required
    if preserve:
        out["x-kubernetes-preserve-unknown-fields"] = True
    return out


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def string_map() -> Schema:
    return {"type": "object", "additionalProperties": STRING}


def crd(group: str, kind: str, plural: str, spec: Schema, *, version: str = "v1", scope: str = "Namespaced",
        short_names: list[str] | None = None, categories: list[str] | None = None, status: bool = True,
        scale: dict | None = None, columns: list[dict] | None = None, required: list[str] | None = None,
        status_subresource: bool | None = None, top_level: dict[str, Schema] | None = None) -> dict:
    """A single-version CRD with a structural schema (`status`: a status field; `status_subresource`,
    by default the same: writes of .status only through /status; `top_level`: more root fields)."""
    root = props({"apiVersion": STRING, "kind": STRING, "metadata": {"type": "object"}, "spec": spec,
                  **({"status": PRESERVE} if status else {}), **(top_level or {})}, required=required or ["spec"])
    if status_subresource is None:
        status_subresource = status
    names: dict[str, Any] = {"kind": kind, "listKind": f"{kind}List", "plural": plural, "singular": kind.lower()}
    if short_names:
        names["shortNames"] = short_names
    if categories:
        names["categories"] = categories
    ver: dict[str, Any] = {"name": version, "schema": {"openAPIV3Schema": root}, "served": True, "storage": True}
    if columns:
        ver["additionalPrinterColumns"] = columns
    subresources: dict[str, Any] = {}
    if status_subresource:
        subresources["status"] = {}
    if scale:
        subresources["scale"] = scale
    if subresources:
        ver["subresources"] = subresources
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": meta(f"{plural}.{group}"),
        "spec": {"group": group, "names": names, "scope": scope, "versions": [ver]},
    }


AGE = {"jsonPath": ".metadata.creationTimestamp", "name": "Age", "type": "date"}

# --- Argo Workflows: the eight kinds its controller watches, in upstream's "minimal" shape -----

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


_ARGO_STATUS = {"Workflow", "CronWorkflow", "WorkflowTaskSet", "WorkflowArtifactGCTask"}
_ARGO_STATUS_SUBRESOURCE = {"WorkflowTaskSet", "WorkflowArtifactGCTask"}


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
        # As upstream's CRDs: a status field only where the controller keeps one, and a status
        # subresource only on the kinds it writes through /status; the Workflow and CronWorkflow
        # controllers write .status with plain updates and merge patches, which a subresource drops.
        # A WorkflowTaskResult keeps the executor's outputs, phase, message and progress at the top level.
        top_level = {"message": STRING, "outputs": PRESERVE, "phase": STRING, "progress": STRING} if kind == "WorkflowTaskResult" else None
        out.append(crd("argoproj.io", kind, plural, spec, version="v1alpha1", scope=scope, short_names=short or None,
                       categories=["argo"], status=kind in _ARGO_STATUS, status_subresource=kind in _ARGO_STATUS_SUBRESOURCE,
                       required=["metadata", *required], top_level=top_level))
    return out


# --- Kubeflow training operator: TFJob ----------------------------------------------------------

def tfjob_crd() -> dict:
    replica = props({"replicas": INTEGER, "restartPolicy": STRING, "template": PRESERVE})
    run_policy = props({"activeDeadlineSeconds": INTEGER, "backoffLimit": INTEGER, "cleanPodPolicy": STRING,
                        # upstream's schema defaults suspend to false, so a stored TFJob always has it
                        "schedulingPolicy": PRESERVE, "suspend": {**BOOLEAN, "default": False}, "ttlSecondsAfterFinished": INTEGER})
    spec = props({"enableDynamicWorker": BOOLEAN, "runPolicy": run_policy, "successPolicy": STRING,
                  "tfReplicaSpecs": {"type": "object", "additionalProperties": replica}}, required=["tfReplicaSpecs"])
    columns = [{"jsonPath": ".status.conditions[-1:].type", "name": "State", "type": "string"}, AGE]
    return crd("kubeflow.org", "TFJob", "tfjobs", spec, columns=columns, categories=["kubeflow"])


# --- Seldon Core v1: SeldonDeployment -------------------------------------------------------------

def seldon_crd() -> dict:
    graph = props({"children": array(PRESERVE), "envSecretRefName": STRING, "implementation": STRING, "modelUri": STRING,
                   "name": STRING, "parameters": array(PRESERVE), "serviceAccountName": STRING, "type": STRING},
                  required=["name"], preserve=True)
    component = props({"hpaSpec": PRESERVE, "kedaSpec": PRESERVE, "metadata": PRESERVE, "pdbSpec": PRESERVE,
                       "replicas": INTEGER, "spec": PRESERVE})
    predictor = props({"annotations": string_map(), "componentSpecs": array(component), "engineResources": PRESERVE,
                       "explainer": PRESERVE, "graph": graph, "labels": string_map(), "name": STRING, "replicas": INTEGER,
                       "shadow": BOOLEAN, "ssl": PRESERVE, "svcOrchSpec": PRESERVE, "traffic": INTEGER},
                      required=["graph", "name"])
    spec = props({"annotations": string_map(), "name": STRING, "predictors": array(predictor), "protocol": STRING,
                  "replicas": INTEGER, "serverType": STRING, "transport": STRING}, required=["predictors"])
    scale = {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}
    return crd("machinelearning.seldon.io", "SeldonDeployment", "seldondeployments", spec, short_names=["sdep"],
               scale=scale, categories=["seldon"], columns=[{"jsonPath": ".status.state", "name": "State", "type": "string"}, AGE])


# --- Emissary-ingress: v3alpha1 only, no conversion webhook ---------------------------------------

_EMISSARY_KINDS = [
    ("AuthService", "authservices"), ("ConsulResolver", "consulresolvers"), ("DevPortal", "devportals"), ("Host", "hosts"),
    ("KubernetesEndpointResolver", "kubernetesendpointresolvers"), ("KubernetesServiceResolver", "kubernetesserviceresolvers"),
    ("Listener", "listeners"), ("LogService", "logservices"), ("Mapping", "mappings"), ("Module", "modules"),
    ("RateLimitService", "ratelimitservices"), ("TCPMapping", "tcpmappings"), ("TLSContext", "tlscontexts"),
    ("TracingService", "tracingservices"),
]


def _emissary_spec(kind: str) -> Schema:
    ids = {"ambassador_id": array(STRING)}
    if kind == "Mapping":
        return props({**ids, "allow_upgrade": array(STRING), "hostname": STRING, "prefix": STRING, "rewrite": STRING,
                      "service": STRING, "timeout_ms": INTEGER, "idle_timeout_ms": INTEGER, "headers": string_map()},
                     required=["prefix", "service"], preserve=True)
    if kind == "Host":
        return props({**ids, "hostname": STRING, "tlsSecret": props({"name": STRING, "namespace": STRING}),
                      "acmeProvider": PRESERVE, "requestPolicy": PRESERVE, "mappingSelector": PRESERVE}, preserve=True)
    if kind == "Listener":
        return props({**ids, "port": INTEGER, "protocol": STRING, "protocolStack": array(STRING), "securityModel": STRING,
                      "hostBinding": PRESERVE, "l7Depth": INTEGER, "statsPrefix": STRING},
                     required=["hostBinding", "port", "securityModel"], preserve=True)
    if kind == "Module":
        return props({**ids, "config": PRESERVE}, preserve=True)
    return props(ids, preserve=True)


# The older versions upstream's CRDs list (v2 is their storage version). kfgen serves none of them,
# but lists them, so its CRDs apply over an upstream install whose status.storedVersions names them;
# objects stored as v2 are then read as v3alpha1 without conversion (see the README).
_EMISSARY_OLD_VERSIONS = {"Host": ["v2"], "Listener": []}


def emissary_crds() -> list[dict]:
    out = []
    for kind, plural in _EMISSARY_KINDS:
        definition = crd("getambassador.io", kind, plural, _emissary_spec(kind), version="v3alpha1",
                         categories=["ambassador-crds"], status=kind in ("Host", "Mapping", "TCPMapping"), required=[])
        old = [{"name": name, "schema": {"openAPIV3Schema": PRESERVE}, "served": False, "storage": False}
               for name in _EMISSARY_OLD_VERSIONS.get(kind, ["v1", "v2"])]
        definition["spec"]["versions"] = old + definition["spec"]["versions"]
        out.append(definition)
    return out
