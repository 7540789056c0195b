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
    rewrite_image,
    role,
    rule,
    service,
    service_account,
    waive,
    webhook_cert,
)

CERT_SECRET = "training-operator-webhook-cert"
WEBHOOK = "validator.training-operator.kubeflow.org"


def install(component: Component, release: Release, ctx: RenderContext) -> list[Obj]:
    ns = component.namespace
    image = rewrite_image(release.images["operator"], component.image_registry)
    jobs = ["tfjobs", "pytorchjobs", "mpijobs", "mxjobs", "xgboostjobs", "paddlejobs"]
    rules = [
        rule([""], ["pods"], ["create", "delete", "get", "list", "patch", "update", "watch"]),
        rule([""], ["pods/exec"], ["create"]),
        rule([""], ["services"], ["create", "delete", "get", "list", "watch"]),
        rule([""], ["configmaps"], ["create", "list", "update", "watch"]),
        rule([""], ["events"], ["create", "delete", "get", "list", "patch", "update", "watch"]),
        rule([""], ["secrets"], ["get", "list", "update", "watch"]),
        rule([""], ["serviceaccounts"], ["create", "get", "list", "watch"]),
        rule(["rbac.authorization.k8s.io"], ["roles", "rolebindings"], ["create", "get", "list", "watch"]),
        rule(["autoscaling"], ["horizontalpodautoscalers"], ["create", "delete", "get", "list", "update", "watch"]),
        rule(["admissionregistration.k8s.io"], ["validatingwebhookconfigurations"], ["get", "list", "update", "watch"]),
        rule(["coordination.k8s.io"], ["leases"], ["create", "get", "list", "update"]),
        rule(["kubeflow.org"], jobs + [f"{j}/status" for j in jobs] + [f"{j}/finalizers" for j in jobs],
             ["create", "delete", "get", "list", "patch", "update", "watch"]),
        rule(["scheduling.volcano.sh", "scheduling.x-k8s.io"], ["podgroups"], ["create", "delete", "get", "list", "update", "watch"]),
    ]
    cert_mount, cert_volume = webhook_cert(CERT_SECRET)
    manager = container(
        "training-operator", image,
        resources_of({"cpu": "100m", "memory": "128Mi"}, {"cpu": "1", "memory": "512Mi"}, component.resources),
        command=["/manager"],
        args=["--enable-scheme=tfjob", "--metrics-bind-address=:8080", "--health-probe-bind-address=:8081",
              "--webhook-server-port=9443", "--webhook-secret-name=" + CERT_SECRET, "--webhook-service-name=training-operator"],
        env=[env_field("MY_POD_NAMESPACE", "metadata.namespace"), env_field("MY_POD_NAME", "metadata.name")],
        ports=[("metrics", 8080), ("webhook-server", 9443)],
        liveness=http_probe("/healthz", 8081, delay=15, period=20),
        readiness=http_probe("/readyz", 8081, delay=10, period=15),
        mounts=[cert_mount],
    )
    pod = pod_spec([manager], "training-operator", volumes=[cert_volume], security=pod_security(NON_ROOT_UID))
    webhook = obj("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", meta(WEBHOOK), webhooks=[{
        "admissionReviewVersions": ["v1"],
        "clientConfig": {"service": {"name": "training-operator", "namespace": ns, "path": "/validate-kubeflow-org-v1-tfjob"}},
        "failurePolicy": "Fail",
        "name": "validate.tfjob.kubeflow.org",
        "rules": [{"apiGroups": ["kubeflow.org"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["tfjobs"]}],
        "sideEffects": "None",
    }])
    return [
        namespace(ns),
        tfjob_crd(),
        service_account("training-operator", ns),
        waive(role("ClusterRole", "training-operator", None, rules), "CKV_K8S_155",
              "the operator injects the CA bundle of its own webhook configuration (its certificate rotation)"),
        binding("ClusterRoleBinding", "training-operator", None, "ClusterRole", "training-operator", [("training-operator", ns)]),
        obj("v1", "Secret", meta(CERT_SECRET, ns), type="Opaque"),
        operator_waivers(deployment("training-operator", ns, "training-operator", pod, component.replicas or 1,
                                    pod_annotations={"sidecar.istio.io/inject": "false"},
                                    labels={"control-plane": "kubeflow-training-operator"})),
        service("training-operator", ns, "training-operator", [("monitoring-port", 8080, 8080), ("webhook-server", 443, 9443)],
                annotations={"prometheus.io/path": "/metrics", "prometheus.io/port": "8080", "prometheus.io/scrape": "true"}),
        webhook,
    ]
