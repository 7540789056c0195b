"""The Kubeflow training operator v1.8 with only the TFJob controller enabled, and its webhook.

The operator manages its own webhook certificate: it fills the empty Secret rendered here and
injects the caBundle into the webhook configuration (Argo CD ignores that field).
"""

from __future__ import annotations

from kfgen.components.package import Release
from kfgen.components.training_operator.crds import tfjob_crd
from kfgen.context import RenderContext
from kfgen.model import Component
from kfgen.objects import (
    NON_ROOT_UID,
    Obj,
    binding,
    container,
    deployment,
    env_field,
    http_probe,
    meta,
    namespace,
    obj,
    operator_waivers,
    pod_security,
    pod_spec,
    resources_of,
    role,
    rule,
    service,
    service_account,
    waive,
    webhook_cert,
)

CERT_SECRET = "training-operator-webhook-cert"
WEBHOOK = "validator.training-operator.kubeflow.org"


SELECTOR = {"control-plane": "kubeflow-training-operator"}  # upstream's: the Deployment's selector and the Service's
APP = {"app": "training-operator"}
LEADER_ELECTION = ["--leader-elect"]  # upstream's flag (default off): one active controller however many replicas run


def install(component: Component, release: Release, ctx: RenderContext) -> list[Obj]:
    ns = component.namespace
    image = component.mirror.rewrite(release.images["operator"])
    every = ["create", "delete", "get", "list", "patch", "update", "watch"]
    # What the TFJob controller calls (tests/cluster/test_rbac_calls.py, from v1.8.1's code): upstream's role also
    # serves the other schemes (MPIJob's ConfigMaps, Roles and ServiceAccounts, PyTorch's HPAs, gang scheduling's
    # PodGroups), and reads every Secret of the cluster where the operator only rotates its own certificate's.
    rules = [
        rule([""], ["events"], ["create", "patch", "update"]),
        rule([""], ["pods"], every),
        rule([""], ["services"], ["create", "delete", "get", "list", "watch"]),
        rule(["admissionregistration.k8s.io"], ["validatingwebhookconfigurations"], ["get", "list", "update", "watch"]),
        rule(["kubeflow.org"], ["tfjobs"], ["get", "list", "patch", "update", "watch"]),
        rule(["kubeflow.org"], ["tfjobs/finalizers"], ["update"]),
        rule(["kubeflow.org"], ["tfjobs/status"], ["get", "patch", "update"]),
    ]
    own_rules = [
        # leader election (--leader-elect): controller-runtime's Lease lock
        rule(["coordination.k8s.io"], ["leases"], ["create", "get", "update"]),
        rule([""], ["secrets"], ["get", "list", "update", "watch"]),  # its webhook certificate, which it rotates
    ]
    cert_mount, cert_volume = webhook_cert(CERT_SECRET)
    manager = container(
        "training-operator", image,
        resources_of({"cpu": "100m", "memory": "128Mi"}, {"cpu": "1", "memory": "512Mi"}, component.resources),
        command=["/manager"],
        args=["--enable-scheme=tfjob", *LEADER_ELECTION],
        env=[env_field("MY_POD_NAMESPACE", "metadata.namespace"), env_field("MY_POD_NAME", "metadata.name")],
        ports=[(None, 8080), ("webhook-server", 9443)],
        liveness=http_probe("/healthz", 8081, delay=15, period=20, timeout=3),
        readiness=http_probe("/readyz", 8081, delay=10, period=15, timeout=3),
        mounts=[cert_mount],
    )
    pod = pod_spec([manager], "training-operator", volumes=[cert_volume], security=pod_security(NON_ROOT_UID),
                   extra={"terminationGracePeriodSeconds": 10})
    webhook = obj("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", meta(WEBHOOK, labels=SELECTOR), webhooks=[{
        "admissionReviewVersions": ["v1"],
        "clientConfig": {"service": {"name": "training-operator", "namespace": ns, "path": "/validate-kubeflow-org-v1-tfjob"}},
        "failurePolicy": "Fail",
        "name": "validator.tfjob.training-operator.kubeflow.org",
        "rules": [{"apiGroups": ["kubeflow.org"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["tfjobs"]}],
        "sideEffects": "None",
    }])
    return [
        namespace(ns),
        tfjob_crd(),
        service_account("training-operator", ns, labels=APP),
        waive(role("ClusterRole", "training-operator", None, rules), "CKV_K8S_155",
              "the operator injects the CA bundle of its own webhook configuration (its certificate rotation)"),
        binding("ClusterRoleBinding", "training-operator", None, "ClusterRole", "training-operator", [("training-operator", ns)], labels=APP),
        role("Role", "training-operator", ns, own_rules, labels=APP),
        binding("RoleBinding", "training-operator", ns, "Role", "training-operator", [("training-operator", ns)], labels=APP),
        obj("v1", "Secret", meta(CERT_SECRET, ns), type="Opaque"),
        operator_waivers(deployment("training-operator", ns, SELECTOR, pod, component.replicas or 1,
                                    pod_annotations={"sidecar.istio.io/inject": "false"})),
        service("training-operator", ns, SELECTOR, [("monitoring-port", 8080, 8080), ("webhook-server", 443, 9443)], labels=APP,
                annotations={"prometheus.io/path": "/metrics", "prometheus.io/port": "8080", "prometheus.io/scrape": "true"}),
        webhook,
    ]
