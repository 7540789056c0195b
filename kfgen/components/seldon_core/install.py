"""Seldon Core v1 operator (1.17.1, Apache-2.0, by default; 1.18.2 under the BSL).

Routing: the operator's own Ambassador support is off (it can only write getambassador.io/v2
Mappings, which Emissary 3.10 serves only through its conversion webhook). kfgen writes
v3alpha1 Mappings itself, next to each SeldonDeployment, so routes are reviewed in the diff.

The webhook certificate is generated in the cluster by a Job (kube-webhook-certgen) that creates
the Secret once and patches the caBundle into the webhook configuration: no key ever lands in git.
"""

from __future__ import annotations

import json
from typing import Mapping

from kfgen.components.package import Release
from kfgen.components.seldon_core.crds import seldon_crd
from kfgen.components.seldon_core.servers import PREDICTOR_SERVERS_KEY, predictor_servers
from kfgen.context import RenderContext
from kfgen.mirror import Mirror
from kfgen.model import Component
from kfgen.objects import (
    NON_ROOT_UID,
    Obj,
    binding,
    container,
    deployment,
    env_field,
    env_var,
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
from kfgen.vocabulary import ARGOCD_HOOK, ARGOCD_HOOK_DELETE_POLICY

CERT_SECRET = "seldon-webhook-server-cert"
CERTGEN_IMAGE = "registry.k8s.io/ingress-nginx/kube-webhook-certgen:v1.4.4"


# upstream's selector (the chart's, unchanged since its kubebuilder days) and the labels on everything it installs
SELECTOR = {"app": "seldon", "app.kubernetes.io/instance": "seldon1", "app.kubernetes.io/name": "seldon",
            "app.kubernetes.io/version": "v0.5", "control-plane": "seldon-controller-manager"}
LABELS = {"app": "seldon", "app.kubernetes.io/instance": "seldon-core-operator", "app.kubernetes.io/name": "seldon-core-operator"}


def webhook_name(ns: str) -> str:
    return f"seldon-validating-webhook-configuration-{ns}"


def install(component: Component, release: Release, ctx: RenderContext) -> list[Obj]:
    ns = component.namespace
    images = release.images
    mirror = component.mirror
    operator_image = mirror.rewrite(images["operator"])
    cert_mount, cert_volume = webhook_cert(CERT_SECRET)
    manager = container(
        "manager", operator_image,
        resources_of({"cpu": "100m", "memory": "300Mi"}, {"cpu": "500m", "memory": "600Mi"}, component.resources),
        command=["/manager"],
        # the chart's flags and environment, with the values kfgen's choices correspond to (its Helm values:
        # tests/parity/seldon-core.values.yaml); the flags read the environment
        args=["--enable-leader-election", "--webhook-port=4443", "--metrics-addr=:8080", "--create-resources=$(MANAGER_CREATE_RESOURCES)",
              "--log-level=$(MANAGER_LOG_LEVEL)", "--leader-election-id=$(MANAGER_LEADER_ELECTION_ID)",
              "--leader-election-resource-lock=$(MANAGER_LEADER_ELECTION_RESOURCE_LOCK)",
              "--leader-election-lease-duration-secs=$(MANAGER_LEADER_ELECTION_LEASE_DURATION_SECS)",
              "--leader-election-renew-deadline-secs=$(MANAGER_LEADER_ELECTION_RENEW_DEADLINE_SECS)",
              "--leader-election-retry-period-secs=$(MANAGER_LEADER_ELECTION_RETRY_PERIOD_SECS)"],
        env=[env_var(k, v) for k, v in _manager_env(images, mirror).items()] + [env_field("POD_NAMESPACE", "metadata.namespace")],
        ports=[("webhook-server", 4443), ("metrics", 8080)],
        liveness=http_probe("/metrics", 8080, delay=15, period=20),
        readiness=http_probe("/metrics", 8080, delay=5, period=10),
        mounts=[cert_mount],
    )
    pod = pod_spec([manager], "seldon-manager", volumes=[cert_volume], security=pod_security(NON_ROOT_UID),
                   extra={"terminationGracePeriodSeconds": 10})
    return [
        namespace(ns),
        seldon_crd(),
        service_account("seldon-manager", ns),
        *_rbac(ns),
        _config(component.version, component.settings.tf_serving_version, images, mirror, ns),
        operator_waivers(deployment("seldon-controller-manager", ns, SELECTOR, pod, component.replicas or 1,
                                    labels={**LABELS, "control-plane": "seldon-controller-manager"},
                                    pod_annotations={"prometheus.io/port": "8080", "prometheus.io/scrape": "true",
                                                     "sidecar.istio.io/inject": "false"})),
        service("seldon-webhook-service", ns, SELECTOR, [(None, 443, 4443)], labels=LABELS),
        _webhook(ns),
        *_certgen(ns, mirror),
    ]


def _manager_env(images: Mapping[str, str], mirror: Mirror) -> dict[str, str]:
    """The operator's environment as the chart sets it (empty RELATED_IMAGE_*: the operator's own defaults)."""
    related = ["EXECUTOR", "STORAGE_INITIALIZER", "SKLEARNSERVER", "SKLEARNSERVER_V2", "XGBOOSTSERVER", "XGBOOSTSERVER_V2", "MLFLOWSERVER",
               "MLFLOWSERVER_V2", "TFPROXY", "TENSORFLOW", "EXPLAINER", "EXPLAINER_V2", "MOCK_CLASSIFIER"]
    return {
        "MANAGER_LEADER_ELECTION_ID": "a33bd623.machinelearning.seldon.io", "MANAGER_LEADER_ELECTION_RESOURCE_LOCK": "",
        "MANAGER_LEADER_ELECTION_LEASE_DURATION_SECS": "15", "MANAGER_LEADER_ELECTION_RENEW_DEADLINE_SECS": "10",
        "MANAGER_LEADER_ELECTION_RETRY_PERIOD_SECS": "2", "MANAGER_LOG_LEVEL": "INFO", "WATCH_NAMESPACE": "",
        **{f"RELATED_IMAGE_{name}": "" for name in related},
        "MANAGER_CREATE_RESOURCES": "false", "CONTROLLER_ID": "",
        # kfgen writes v3alpha1 Mappings itself (see the module's docstring)
        "AMBASSADOR_ENABLED": "false", "AMBASSADOR_VERSION": "v2", "AMBASSADOR_SINGLE_NAMESPACE": "false",
        "PREDICTIVE_UNIT_HTTP_SERVICE_PORT": "9000", "PREDICTIVE_UNIT_GRPC_SERVICE_PORT": "9500",
        "PREDICTIVE_UNIT_DEFAULT_ENV_SECRET_REF_NAME": "", "PREDICTIVE_UNIT_METRICS_PORT_NAME": "metrics",
        "ISTIO_ENABLED": "false", "KEDA_ENABLED": "false", "ISTIO_GATEWAY": "istio-system/seldon-gateway", "ISTIO_TLS_MODE": "",
        "USE_EXECUTOR": "true", "EXECUTOR_CONTAINER_IMAGE_AND_VERSION": mirror.rewrite(images["executor"]),
        "EXECUTOR_CONTAINER_IMAGE_PULL_POLICY": "IfNotPresent", "EXECUTOR_PROMETHEUS_PATH": "/prometheus", "EXECUTOR_SERVER_PORT": "8000",
        "EXECUTOR_CONTAINER_USER": "8888", "EXECUTOR_CONTAINER_SERVICE_ACCOUNT_NAME": "default",
        "EXECUTOR_SERVER_METRICS_PORT_NAME": "metrics", "EXECUTOR_REQUEST_LOGGER_DEFAULT_ENDPOINT": "http://default-broker",
        "EXECUTOR_REQUEST_LOGGER_WORK_QUEUE_SIZE": "10000", "EXECUTOR_REQUEST_LOGGER_WRITE_TIMEOUT_MS": "2000", "DEFAULT_USER_ID": "8888",
        "EXECUTOR_DEFAULT_CPU_REQUEST": "500m", "EXECUTOR_DEFAULT_MEMORY_REQUEST": "512Mi", "EXECUTOR_DEFAULT_CPU_LIMIT": "500m",
        "EXECUTOR_DEFAULT_MEMORY_LIMIT": "512Mi", "DEPLOYMENT_NAME_AS_PREFIX": "false", "EXECUTOR_FULL_HEALTH_CHECKS": "false",
    }


def _config(version: str, tf_serving: str, images: Mapping[str, str], mirror: Mirror, ns: str) -> Obj:
    """The operator's seldon-config ConfigMap: prepackaged servers and the storage initializer."""
    servers = {}
    for server, protocols in predictor_servers(version, tf_serving).items():
        servers[server] = {"protocols": {p: {"defaultImageVersion": tag, "image": mirror.rewrite(image)}
                                         for p, (image, tag) in sorted(protocols.items())}}
    initializer = {"cpuLimit": "1", "cpuRequest": "100m", "image": mirror.rewrite(images["storage_initializer"]),
                   "memoryLimit": "1Gi", "memoryRequest": "100Mi"}
    data = {
        "credentials": json.dumps({"gcs": {"gcsCredentialFileName": "gcloud-application-credentials.json"},
                                   "s3": {"s3AccessKeyIDName": "awsAccessKeyID", "s3SecretAccessKeyName": "awsSecretAccessKey"}},
                                  sort_keys=True, indent=2),
        PREDICTOR_SERVERS_KEY: json.dumps(servers, sort_keys=True, indent=2),
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
    every = ["create", "delete", "get", "list", "patch", "update", "watch"]
    status = ["get", "patch", "update"]
    manager_rules = [
        rule(["apps"], ["deployments"], every),
        rule(["apps"], ["deployments/status"], status),
        # every reconcile reads the SeldonDeployment's Namespace (seldondeployment_controller.go, v1.17.1)
        rule([""], ["namespaces"], ["get", "list", "watch"]),
        rule([""], ["services"], every),
        rule([""], ["services/status"], status),
        rule([""], ["events"], ["create", "patch"]),
        rule(["autoscaling"], ["horizontalpodautoscalers"], every),
        rule(["autoscaling"], ["horizontalpodautoscalers/status"], status),
        rule(["policy"], ["poddisruptionbudgets"], every),
        rule(["policy"], ["poddisruptionbudgets/status"], status),
        rule(["machinelearning.seldon.io"], ["seldondeployments"], every),
        rule(["machinelearning.seldon.io"], ["seldondeployments/finalizers", "seldondeployments/status"], status),
    ]
    reader_rules = [rule([""], ["configmaps", "secrets", "serviceaccounts"], ["get", "list", "watch"])]
    leader_rules = [
        rule(["coordination.k8s.io"], ["leases"], ["create", "delete", "get", "list", "patch", "update", "watch"]),
        rule([""], ["configmaps"], ["create", "delete", "get", "list", "patch", "update", "watch"]),
        rule([""], ["configmaps/status"], ["get", "patch", "update"]),
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


def _certgen(ns: str, mirror: Mirror) -> list[Obj]:
    """A Job that creates the webhook's serving certificate once, then patches the caBundle."""
    image = mirror.rewrite(CERTGEN_IMAGE)
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
    hook = {ARGOCD_HOOK: "Sync", ARGOCD_HOOK_DELETE_POLICY: "BeforeHookCreation"}
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
