"""Seldon Core v1 operator (1.17.1, Apache-2.0, by default; 1.18.2 under the BSL).

Routing: the operator's own Ambassador support is off (it can only write getambassador.io/v2
Mappings, which Emissary 3.10 serves only through its conversion webhook). kfgen writes
v3alpha1 Mappings itself, next to each SeldonDeployment, so routes are reviewed in the diff.

The webhook certificate is generated in the cluster by a Job (kube-webhook-certgen) that creates
the Secret once and patches the caBundle into the webhook configuration: no key ever lands in git.
"""

from __future__ import annotations

import json

from kfgen.catalog import crds
from kfgen.catalog.objects import (NON_ROOT_UID, Obj, binding, container, deployment, env_field, env_var, http_probe, meta,
                                   namespace, obj, pod_security, pod_spec, resources_of, rewrite_image, role, rule,
                                   operator_waivers, service, service_account, waive, webhook_cert)
from kfgen.catalog.versions import SELDON
from kfgen.catalog.view import View
from kfgen.model import Component

CERT_SECRET = "seldon-webhook-server-cert"
CERTGEN_IMAGE = "registry.k8s.io/ingress-nginx/kube-webhook-certgen:v1.4.4"


def webhook_name(ns: str) -> str:
    return f"seldon-validating-webhook-configuration-{ns}"


def install(component: Component, view: View) -> list[Obj]:
    ns = component.namespace
    images = SELDON[component.version]
    mirror = component.image_registry
    operator_image = rewrite_image(images["operator"], mirror)
    cert_mount, cert_volume = webhook_cert(CERT_SECRET)
    manager = container(
        "manager", operator_image,
        resources_of({"cpu": "100m", "memory": "300Mi"}, {"cpu": "500m", "memory": "600Mi"}, component.resources),
        command=["/manager"],
        args=["--enable-leader-election", "--webhook-port=4443", "--metrics-addr=:8080", "--create-resources=false",
              "--leader-election-id=a33bd623.machinelearning.seldon.io"],
        env=[
            env_var("AMBASSADOR_ENABLED", "false"),
            env_var("ISTIO_ENABLED", "false"),
            env_var("KEDA_ENABLED", "false"),
            env_var("EXECUTOR_CONTAINER_IMAGE_AND_VERSION", rewrite_image(images["executor"], mirror)),
            env_var("EXECUTOR_CONTAINER_IMAGE_PULL_POLICY", "IfNotPresent"),
            env_var("EXECUTOR_CONTAINER_USER", "8888"),
            env_var("EXECUTOR_SERVER_PORT", "8000"),
            env_var("PREDICTIVE_UNIT_HTTP_SERVICE_PORT", "9000"),
            env_var("PREDICTIVE_UNIT_GRPC_SERVICE_PORT", "9500"),
            env_var("MANAGER_CREATE_RESOURCES", "false"),
            env_field("POD_NAMESPACE", "metadata.namespace"),
        ],
        ports=[("webhook-server", 4443), ("metrics", 8080)],
        liveness=http_probe("/metrics", 8080, delay=15, period=20),
        readiness=http_probe("/metrics", 8080, delay=5, period=10),
        mounts=[cert_mount],
    )
    pod = pod_spec([manager], "seldon-manager", volumes=[cert_volume], security=pod_security(NON_ROOT_UID))
    return [
        namespace(ns),
        crds.seldon_crd(),
        service_account("seldon-manager", ns),
        *_rbac(ns),
        _config(component.version, mirror, ns),
        operator_waivers(deployment("seldon-controller-manager", ns, "seldon-controller-manager", pod, component.replicas or 1,
                                    pod_annotations={"sidecar.istio.io/inject": "false"},
                                    labels={"control-plane": "seldon-controller-manager"})),
        service("seldon-webhook-service", ns, "seldon-controller-manager", [("https", 443, 4443)]),
        _webhook(ns),
        *_certgen(ns, mirror),
    ]


def _config(version: str, mirror: str | None, ns: str) -> Obj:
    """The operator's seldon-config ConfigMap: prepackaged servers and the storage initializer."""
    servers = {}
    for server, protocols in SELDON[version]["servers"].items():
        servers[server] = {"protocols": {p: {"defaultImageVersion": tag, "image": rewrite_image(image, mirror)}
                                         for p, (image, tag) in sorted(protocols.items())}}
    initializer = {"cpuLimit": "1", "cpuRequest": "100m", "image": rewrite_image(SELDON[version]["storage_initializer"], mirror),
                   "memoryLimit": "1Gi", "memoryRequest": "100Mi"}
    data = {
        "credentials": json.dumps({"gcs": {"gcsCredentialFileName": "gcloud-application-credentials.json"},
                                   "s3": {"s3AccessKeyIDName": "awsAccessKeyID", "s3SecretAccessKeyName": "awsSecretAccessKey"}},
                                  sort_keys=True, indent=2),
        "predictor_servers": json.dumps(servers, sort_keys=True, indent=2),
        "storageInitializer": json.dumps(initializer, sort_keys=True, indent=2),
    }
    return obj("v1", "ConfigMap", meta("seldon-config", ns, labels={"control-plane": "seldon-controller-manager"}), data=data)


def _webhook(ns: str) -> Obj:
    absent = {"matchExpressions": [{"key": "seldon.io/controller-id", "operator": "DoesNotExist"}]}
    return obj("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", meta(webhook_name(ns)), webhooks=[{
        "admissionReviewVersions": ["v1", "v1beta1"],
        "clientConfig": {"service": {"name": "seldon-webhook-service", "namespace": ns,
                                     "path": "/validate-machinelearning-seldon-io-v1-seldondeployment"}},
        "failurePolicy": "Fail",
        "name": "v1.vseldondeployment.kb.io",
        "namespaceSelector": absent,
        "objectSelector": absent,
        "rules": [{"apiGroups": ["machinelearning.seldon.io"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                   "resources": ["seldondeployments"]}],
        "sideEffects": "None",
    }])


def _rbac(ns: str) -> list[Obj]:
    manager_rules = [
        rule(["apps"], ["deployments"], ["create", "delete", "get", "list", "patch", "update", "watch"]),
        rule(["apps"], ["deployments/status"], ["get", "patch", "update"]),
        rule([""], ["services"], ["create", "delete", "get", "list", "patch", "update", "watch"]),
        rule([""], ["services/status"], ["get", "patch", "update"]),
        rule([""], ["events"], ["create", "patch"]),
        # every reconcile reads the SeldonDeployment's Namespace (seldondeployment_controller.go, v1.17.1)
        rule([""], ["namespaces"], ["get", "list", "watch"]),
        rule(["autoscaling"], ["horizontalpodautoscalers"], ["create", "delete", "get", "list", "patch", "update", "watch"]),
        rule(["policy"], ["poddisruptionbudgets"], ["create", "delete", "get", "list", "patch", "update", "watch"]),
        rule(["machinelearning.seldon.io"], ["seldondeployments", "seldondeployments/finalizers", "seldondeployments/status"],
             ["create", "delete", "get", "list", "patch", "update", "watch"]),
    ]
    reader_rules = [rule([""], ["configmaps", "secrets", "serviceaccounts"], ["get", "list", "watch"])]
    leader_rules = [
        rule(["coordination.k8s.io"], ["leases"], ["create", "delete", "get", "list", "patch", "update", "watch"]),
        rule([""], ["configmaps"], ["create", "delete", "get", "list", "patch", "update", "watch"]),
        rule([""], ["events"], ["create", "patch"]),
    ]
    subject = [("seldon-manager", ns)]
    return [
        role("ClusterRole", f"seldon-manager-role-{ns}", None, manager_rules),
        binding("ClusterRoleBinding", f"seldon-manager-rolebinding-{ns}", None, "ClusterRole", f"seldon-manager-role-{ns}", subject),
        role("ClusterRole", f"seldon-manager-sas-role-{ns}", None, reader_rules),
        waive(binding("ClusterRoleBinding", f"seldon-manager-sas-rolebinding-{ns}", None, "ClusterRole", f"seldon-manager-sas-role-{ns}",
                      subject), "CKV2_K8S_5", "Seldon's storage initializer reads each model's credentials Secret (envSecretRefName) "
                      "in the model's namespace"),
        role("Role", "seldon-leader-election-role", ns, leader_rules),
        binding("RoleBinding", "seldon-leader-election-rolebinding", ns, "Role", "seldon-leader-election-role", subject),
    ]


def _certgen(ns: str, mirror: str | None) -> list[Obj]:
    """A Job that creates the webhook's serving certificate once, then patches the caBundle."""
    image = rewrite_image(CERTGEN_IMAGE, mirror)
    sa = "seldon-webhook-certgen"
    hosts = f"seldon-webhook-service,seldon-webhook-service.{ns},seldon-webhook-service.{ns}.svc"
    small = resources_of({"cpu": "10m", "memory": "32Mi"}, {"cpu": "100m", "memory": "64Mi"})
    create = container("create", image, small, args=["create", f"--host={hosts}", f"--namespace={ns}", f"--secret-name={CERT_SECRET}",
                                                     "--cert-name=tls.crt", "--key-name=tls.key"])
    patch = container("patch", image, small, args=["patch", f"--webhook-name={webhook_name(ns)}", f"--namespace={ns}",
                                                   f"--secret-name={CERT_SECRET}", "--patch-mutating=false",
                                                   "--patch-validating=true", "--patch-failure-policy=Fail"])
    pod = pod_spec([patch], sa, security=pod_security(65532), extra={"initContainers": [create], "restartPolicy": "OnFailure"})
    # An Argo CD Sync hook: recreated on each sync (the Job is idempotent), never left OutOfSync.
    hook = {"argocd.argoproj.io/hook": "Sync", "argocd.argoproj.io/hook-delete-policy": "BeforeHookCreation"}
    job = obj("batch/v1", "Job", meta("seldon-webhook-certgen", ns, labels={"app.kubernetes.io/name": "seldon-webhook-certgen"},
                                      annotations=hook),
              spec={"backoffLimit": 6, "template": {"metadata": {"labels": {"app.kubernetes.io/name": "seldon-webhook-certgen"}}, "spec": pod}})
    return [
        service_account(sa, ns),
        role("Role", sa, ns, [rule([""], ["secrets"], ["create"]), rule([""], ["secrets"], ["get"], names=[CERT_SECRET])]),
        binding("RoleBinding", sa, ns, "Role", sa, [(sa, ns)]),
        waive(role("ClusterRole", f"{sa}-{ns}", None, [rule(["admissionregistration.k8s.io"], ["validatingwebhookconfigurations"],
                                                             ["get", "update"], names=[webhook_name(ns)])]),
              "CKV_K8S_155", "patches the CA bundle into Seldon's own webhook configuration, named in the rule"),
        binding("ClusterRoleBinding", f"{sa}-{ns}", None, "ClusterRole", f"{sa}-{ns}", [(sa, ns)]),
        operator_waivers(job),
    ]
