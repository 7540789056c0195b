"""Proof 5: each operator's ServiceAccount, as rendered, may make every API call its controller makes.

The tables below list the calls, each from upstream's RBAC of the pinned version and its controller
code (paths at the tag). The check is a SubjectAccessReview per call, as the ServiceAccount, against
the real RBAC authorizer with the rendered Roles and bindings in place. Scopes: "cluster" (a
cluster-wide list/watch or a cluster-scoped object), "own" (the operator's namespace), "workloads"
(the namespace of the workloads' custom resources).
"""

from __future__ import annotations

import pytest

from .conftest import ident

# (verbs, API group, resource[/subresource], scope, source)
Call = tuple[str, str, str, str, str]

# kubeflow/training-operator v1.8.1, only the TFJob controller (kfgen runs it with --enable-scheme=tfjob);
# PodGroups (Volcano, scheduler-plugins) only with gang scheduling, which kfgen does not turn on.
TRAINING_OPERATOR: list[Call] = [
    ("get list watch", "kubeflow.org", "tfjobs", "cluster", "pkg/controller.v1/tensorflow/tfjob_controller.go:108 (informer, reconcile)"),
    ("update patch", "kubeflow.org", "tfjobs", "workloads", "tfjob_controller.go:108 (defaults, finalizers)"),
    ("get update patch", "kubeflow.org", "tfjobs/status", "workloads", "tfjob_controller.go:109, UpdateJobStatusInApiServer: Status().Update"),
    ("update", "kubeflow.org", "tfjobs/finalizers", "workloads", "tfjob_controller.go:110"),
    ("get list watch create update patch delete", "", "pods", "workloads", "tfjob_controller.go:111 (pkg/controller.v1/common/pod.go)"),
    ("get list watch", "", "pods", "cluster", "tfjob_controller.go:111 (informer over all namespaces)"),
    ("get list watch create delete", "", "services", "workloads", "tfjob_controller.go:112 (pkg/controller.v1/common/service.go)"),
    ("list watch", "", "services", "cluster", "tfjob_controller.go:112 (informer)"),
    ("create patch update", "", "events", "workloads", "tfjob_controller.go:115 (record.EventRecorder)"),
    ("get list watch update", "", "secrets", "own", "pkg/cert/cert.go:41 (the webhook certificate it rotates)"),
    ("get list watch update", "admissionregistration.k8s.io", "validatingwebhookconfigurations", "cluster",
     "pkg/cert/cert.go:42 (injects its CA bundle)"),
    ("get create update", "coordination.k8s.io", "leases", "own", "cmd/training-operator.v1/main.go (controller-runtime leader election)"),
]

WORKFLOW_CONTROLLER: list[Call] = [  # argoproj/argo-workflows v3.6.19
    ("get list watch update patch delete create", "argoproj.io", "workflows", "workloads",
     "manifests/cluster-install/workflow-controller-rbac/workflow-controller-clusterrole.yaml; workflow/controller/operator.go:763 (Update)"),
    ("list watch", "argoproj.io", "workflows", "cluster", "workflow/controller/controller.go (informer)"),
    ("get list watch", "argoproj.io", "workflowtemplates", "workloads", "workflow-controller-clusterrole.yaml (template informer)"),
    ("get list watch", "argoproj.io", "clusterworkflowtemplates", "cluster", "workflow-controller-clusterrole.yaml"),
    ("get list watch update patch delete", "argoproj.io", "cronworkflows", "workloads", "workflow/cron/operator.go:180 (merge patch)"),
    ("list watch deletecollection", "argoproj.io", "workflowtaskresults", "workloads", "workflow/controller/taskresult.go (informer, GC)"),
    ("create get list watch patch delete", "argoproj.io", "workflowtasksets", "workloads", "workflow/controller/taskset.go:27"),
    ("create get list watch patch delete", "argoproj.io", "workflowartifactgctasks", "workloads", "workflow/controller/artifact_gc.go"),
    ("create get list watch update patch delete", "", "pods", "workloads", "workflow/controller/workflowpod.go, pod/queue.go:93"),
    ("create", "", "pods/exec", "workloads", "workflow/controller/pod/queue.go:66, workflow/signal/signal.go:19 (signals a container by exec)"),
    ("get list watch", "", "configmaps", "workloads", "workflow/controller/config.go (artifact repositories, parameters)"),
    ("get list watch", "", "configmaps", "own", "workflow/controller/config.go (workflow-controller-configmap)"),
    ("create get update delete", "", "persistentvolumeclaims", "workloads", "workflow/controller/operator.go:1861 (volumeClaimTemplates)"),
    ("get list", "", "serviceaccounts", "workloads", "workflow/controller/workflowpod.go (executor ServiceAccount)"),
    ("create patch", "", "events", "workloads", "util/k8s events recorder"),
    ("create get delete", "policy", "poddisruptionbudgets", "workloads", "workflow/controller/operator.go (spec.podDisruptionBudget)"),
    ("get create update", "coordination.k8s.io", "leases", "own", "cmd/workflow-controller/main.go:148 (leader election); manifests/.../workflow-controller-role.yaml"),
    ("get", "", "secrets", "own", "workflow-controller-role.yaml"),
]

EXECUTOR: list[Call] = [  # the ServiceAccount pipeline pods run as (emissary executor, v3.6.19)
    ("create patch", "argoproj.io", "workflowtaskresults", "workloads",
     "manifests/quick-start/base/executor/emissary/executor-role.yaml; workflow/executor/taskresult.go:43 (create, merge patch)"),
]

# SeldonIO/seldon-core v1.17.1 operator/controllers/seldondeployment_controller.go:1998-2023. The Istio
# (virtualservices, destinationrules), Ambassador (mappings, tlscontexts) and KEDA (scaledobjects) calls
# are left out: kfgen's manager Deployment turns them off (AMBASSADOR_ENABLED, ISTIO_ENABLED, KEDA_ENABLED=false).
SELDON_MANAGER: list[Call] = [
    ("get list watch", "machinelearning.seldon.io", "seldondeployments", "cluster", "seldondeployment_controller.go:2014 (informer)"),
    ("update patch", "machinelearning.seldon.io", "seldondeployments", "workloads", "seldondeployment_controller.go:2014"),
    ("get update patch", "machinelearning.seldon.io", "seldondeployments/status", "workloads", "seldondeployment_controller.go:2015 (Status().Update)"),
    ("update", "machinelearning.seldon.io", "seldondeployments/finalizers", "workloads", "seldondeployment_controller.go:2016"),
    ("get list watch create update patch delete", "apps", "deployments", "workloads", "seldondeployment_controller.go:1998"),
    ("list watch", "apps", "deployments", "cluster", "seldondeployment_controller.go:1998 (Owns informer)"),
    ("get list watch create update patch delete", "", "services", "workloads", "seldondeployment_controller.go:2001"),
    ("list watch", "", "services", "cluster", "seldondeployment_controller.go:2001 (Owns informer)"),
    ("get list watch create update patch delete", "autoscaling", "horizontalpodautoscalers", "workloads", "seldondeployment_controller.go:2007"),
    ("get list watch create update patch delete", "policy", "poddisruptionbudgets", "workloads", "seldondeployment_controller.go:2012"),
    ("get", "", "namespaces", "cluster", "seldondeployment_controller.go:2017-2018, 2054 (every reconcile reads its Namespace)"),
    ("list watch", "", "namespaces", "cluster", "seldondeployment_controller.go:2017-2018"),
    ("create patch", "", "events", "workloads", "seldondeployment_controller.go:2019"),
    ("get list watch", "", "configmaps", "own", "operator/controllers/ (seldon-config ConfigMap); config/rbac/role.yaml"),
    ("get create update", "coordination.k8s.io", "leases", "own", "operator/main.go (leader election, config/rbac/leader_election_role.yaml)"),
]

HUB: list[Call] = [  # jupyterhub/zero-to-jupyterhub-k8s 4.4.0 jupyterhub/templates/hub/rbac.yaml; kubespawner 7.0.0 spawner.py
    ("get watch list create delete", "", "pods", "own", "hub/rbac.yaml; kubespawner: the user pod"),
    ("get watch list create delete", "", "persistentvolumeclaims", "own", "hub/rbac.yaml; kubespawner: user storage"),
    ("get watch list create delete", "", "secrets", "own", "hub/rbac.yaml; kubespawner: internal SSL secret"),
    ("get watch list create delete", "", "services", "own", "hub/rbac.yaml; kubespawner: the user Service"),
    ("get watch list", "", "events", "own", "hub/rbac.yaml; kubespawner: events reflector"),
]

EMISSARY: list[Call] = [  # emissary-ingress/emissary v3.10.0 manifests/emissary/emissary-emissaryns.yaml.in ClusterRole
    ("get list watch", "", "namespaces", "cluster", "emissary-emissaryns.yaml.in (watt)"),
    ("get list watch", "", "services", "cluster", "emissary-emissaryns.yaml.in"),
    ("get list watch", "", "secrets", "cluster", "emissary-emissaryns.yaml.in (TLS secrets)"),
    ("get list watch", "", "configmaps", "cluster", "emissary-emissaryns.yaml.in"),
    ("get list watch", "", "endpoints", "cluster", "emissary-emissaryns.yaml.in (endpoint routing)"),
    ("get list watch", "discovery.k8s.io", "endpointslices", "cluster", "emissary-emissaryns.yaml.in"),
    ("get list watch", "getambassador.io", "mappings", "cluster", "emissary-emissaryns.yaml.in"),
    ("get list watch", "getambassador.io", "hosts", "cluster", "emissary-emissaryns.yaml.in"),
    ("get list watch", "getambassador.io", "listeners", "cluster", "emissary-emissaryns.yaml.in"),
    ("get list watch", "getambassador.io", "modules", "cluster", "emissary-emissaryns.yaml.in"),
    ("update", "getambassador.io", "mappings/status", "workloads", "emissary-emissaryns.yaml.in (status of Mappings)"),
    ("get list watch", "apiextensions.k8s.io", "customresourcedefinitions", "cluster", "emissary-emissaryns.yaml.in (which CRDs exist)"),
]

# Deployment name -> its calls; the ServiceAccount and namespace are read from the rendered Deployment.
TABLES: dict[str, list[Call]] = {
    "training-operator": TRAINING_OPERATOR,
    "workflow-controller": WORKFLOW_CONTROLLER,
    "seldon-controller-manager": SELDON_MANAGER,
    "hub": HUB,
    "emissary-ingress": EMISSARY,
}


def review(api, namespace: str, service_account: str, verb: str, group: str, resource: str, in_namespace: str) -> tuple[bool, str]:
    resource, _, subresource = resource.partition("/")
    body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": f"system:serviceaccount:{namespace}:{service_account}",
                     "groups": ["system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"],
                     "resourceAttributes": {"verb": verb, "group": group, "resource": resource, "subresource": subresource,
                                            "namespace": in_namespace}}}
    status = api.request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", body)["status"]
    return bool(status.get("allowed")), status.get("reason", "")


def operators(synced) -> dict[str, tuple[str, str]]:
    """Deployment name -> (namespace, ServiceAccount) for the operators this environment renders."""
    out = {}
    for o in synced.objects:
        if o["kind"] == "Deployment" and o["metadata"]["name"] in TABLES:
            out[o["metadata"]["name"]] = (o["metadata"]["namespace"], o["spec"]["template"]["spec"].get("serviceAccountName", "default"))
    return out


def workload_namespaces(synced) -> set[str]:
    kinds = ("TFJob", "SeldonDeployment", "WorkflowTemplate", "CronWorkflow", "Mapping")
    return {o["metadata"]["namespace"] for o in synced.objects if o["kind"] in kinds and o["metadata"].get("namespace")}


def executor_accounts(synced) -> set[tuple[str, str]]:
    """(namespace, ServiceAccount) pipeline pods run as: a workflow's own, else that of the
    WorkflowTemplate it refers to (Argo merges the template's spec in), else `default`."""
    templates = {(o["metadata"]["namespace"], o["metadata"]["name"]): o["spec"] for o in synced.objects if o["kind"] == "WorkflowTemplate"}
    out = set()
    for o in synced.objects:
        if o["kind"] not in ("WorkflowTemplate", "CronWorkflow"):
            continue
        namespace = o["metadata"]["namespace"]
        spec = o["spec"].get("workflowSpec") or o["spec"]
        ref = (spec.get("workflowTemplateRef") or {}).get("name")
        account = spec.get("serviceAccountName") or templates.get((namespace, ref), {}).get("serviceAccountName") or "default"
        out.add((namespace, account))
    return out


def denied_calls(api, namespace: str, account: str, calls: list[Call], workloads: set[str]) -> list[str]:
    denied = []
    for verbs, group, resource, scope, source in calls:
        targets = {"cluster": [""], "own": [namespace], "workloads": sorted(workloads)}[scope]
        for in_namespace in targets:
            for verb in verbs.split():
                allowed, reason = review(api, namespace, account, verb, group, resource, in_namespace)
                if not allowed:
                    where = f"in {in_namespace}" if in_namespace else "cluster-wide"
                    denied.append(f"{namespace}/{account}: {verb} {group or 'core'}/{resource} {where} denied ({source})")
    return denied


def test_operators_may_make_every_call_of_their_controller(cluster, environment):
    synced = cluster.synced(*environment)
    found = operators(synced)
    assert found, "no operator Deployment in the render"
    workloads = workload_namespaces(synced)
    denied = []
    for deployment, (namespace, account) in sorted(found.items()):
        denied += denied_calls(cluster.api, namespace, account, TABLES[deployment], workloads)
    assert not denied, "\n".join(denied)


def test_pipeline_pods_may_report_their_results(cluster, environment):
    synced = cluster.synced(*environment)
    accounts = executor_accounts(synced)
    if not accounts:
        pytest.skip("no pipelines in this environment")
    denied = []
    for namespace, account in sorted(accounts):
        denied += denied_calls(cluster.api, namespace, account, EXECUTOR, {namespace})
    assert not denied, "\n".join(denied)


def test_the_table_is_checked_against_a_denial(cluster, environment):
    """The review itself can say no: a call no operator is granted is denied."""
    synced = cluster.synced(*environment)
    namespace, account = operators(synced)["training-operator"] if "training-operator" in operators(synced) else next(iter(operators(synced).values()))
    allowed, _ = review(cluster.api, namespace, account, "delete", "", "namespaces", "")
    assert not allowed, f"{ident({'kind': 'ServiceAccount', 'metadata': {'namespace': namespace, 'name': account}})} may delete namespaces"
