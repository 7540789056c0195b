"""Argo Workflows' cluster install: the workflow controller and the Argo server (v3.5 to v3.7)."""

from __future__ import annotations

from kfgen.components.argo_workflows.crds import argo_crds
from kfgen.components.package import Release
from kfgen.context import RenderContext
from kfgen.model import Artifacts, Component
from kfgen.objects import (
    NON_ROOT_UID,
    Obj,
    annotate,
    binding,
    config_map,
    container,
    deployment,
    empty_dir,
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
)
from kfgen.yamlio import dump

ARGO_GROUP = ["argoproj.io"]
# what upstream's argo-aggregate-to-{view,edit,admin} grant (admin also workflowtasksets; all workflowtaskresults)
AGGREGATED_KINDS = ["workflows", "workfloweventbindings", "workflowtemplates", "cronworkflows", "clusterworkflowtemplates"]
CONTROLLER = {"app": "workflow-controller"}  # upstream's selectors
SERVER = {"app": "argo-server"}
EXECUTOR_RESOURCES = {"limits": {"cpu": "500m", "memory": "256Mi"}, "requests": {"cpu": "50m", "memory": "64Mi"}}


def install(component: Component, release: Release, ctx: RenderContext) -> list[Obj]:
    ns = component.namespace
    images = {k: component.mirror.rewrite(v) for k, v in release.images.items()}
    objects: list[Obj] = [namespace(ns), *argo_crds()]
    objects += [service_account("argo", ns), service_account("argo-server", ns, annotations=ctx.identity_annotations("argo-server"))]
    objects.append(config_map("workflow-controller-configmap", ns, controller_config(ctx)))
    objects.append(obj("scheduling.k8s.io/v1", "PriorityClass", meta("workflow-controller"), value=1000000,
                       description="Argo Workflows' controller: keeps running when the cluster is full."))
    objects += _rbac(ns, release.version)
    objects.append(_controller(component, images))
    objects.append(service("workflow-controller-metrics", ns, CONTROLLER, [("metrics", 9090, 9090)]))
    if component.settings.server_enabled:
        objects.append(_server(component, images, ctx))
        objects.append(service("argo-server", ns, SERVER, [("web", 2746, 2746)]))
    return objects


def controller_config(ctx: RenderContext) -> dict[str, str]:
    """The controller's ConfigMap data: executor limits and, per environment, the artifact repository."""
    data = {
        "executor": _yaml({"imagePullPolicy": "IfNotPresent", "resources": EXECUTOR_RESOURCES,
                           "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                                               "readOnlyRootFilesystem": True, "runAsNonRoot": True, "runAsUser": 8737,
                                               "seccompProfile": {"type": "RuntimeDefault"}}}),
        "workflowDefaults": _yaml({"spec": {"podGC": {"strategy": "OnPodSuccess"},
                                            "ttlStrategy": {"secondsAfterCompletion": 604800}}}),
    }
    if ctx.env and ctx.env.artifacts:
        data["artifactRepository"] = _yaml(artifact_repository(ctx.env.artifacts))
    return data


def artifact_repository(artifacts: Artifacts) -> Obj:
    """Argo's artifactRepository for the environment's store: workload identity where the cloud has it."""
    key = f"{artifacts.key_prefix}/{{{{workflow.name}}}}/{{{{pod.name}}}}"
    if artifacts.provider == "gcs":
        return {"archiveLogs": True, "gcs": {"bucket": artifacts.bucket, "keyFormat": key}}
    if artifacts.provider == "azure":
        endpoint = artifacts.endpoint or f"https://{artifacts.bucket}.blob.core.windows.net"
        return {"archiveLogs": True, "azure": {"container": artifacts.bucket, "endpoint": endpoint, "useSDKCreds": True}}
    s3: Obj = {"bucket": artifacts.bucket, "keyFormat": key}
    s3["endpoint"] = artifacts.endpoint or (f"s3.{artifacts.region}.amazonaws.com" if artifacts.region else "s3.amazonaws.com")
    if artifacts.region:
        s3["region"] = artifacts.region
    if artifacts.insecure:
        s3["insecure"] = True
    if artifacts.credentials_secret:
        s3["accessKeySecret"] = {"key": "accessKey", "name": artifacts.credentials_secret}
        s3["secretKeySecret"] = {"key": "secretKey", "name": artifacts.credentials_secret}
    else:
        s3["useSDKCreds"] = True
    return {"archiveLogs": True, "s3": s3}


def _yaml(value: Obj) -> str:
    return dump(value)


def _controller(component: Component, images: dict[str, str]) -> Obj:
    ns = component.namespace
    main = container(
        "workflow-controller", images["controller"],
        resources_of({"cpu": "100m", "memory": "256Mi"}, {"cpu": "1", "memory": "1Gi"}, component.resources),
        command=["workflow-controller"],
        # the executor image is named here (upstream lets the controller derive it) so registry mirrors rewrite it
        args=["--executor-image", images["executor"]],
        env=[env_field("LEADER_ELECTION_IDENTITY", "metadata.name")],
        ports=[("metrics", 9090), (None, 6060)],
        liveness=http_probe("/healthz", 6060, delay=90, period=60, timeout=30, failures=3),
        readiness=http_probe("/healthz", 6060, delay=10, period=10),
    )
    pod = pod_spec([main], "argo", security=pod_security(NON_ROOT_UID), extra={"priorityClassName": "workflow-controller"})
    return operator_waivers(deployment("workflow-controller", ns, CONTROLLER, pod, component.replicas or 1, labels={}))


def _server(component: Component, images: dict[str, str], ctx: RenderContext) -> Obj:
    ns = component.namespace
    # the server's own default is client mode (and --secure=true): flags only for what the stack changes
    modes = component.settings.auth_modes
    auth = [] if modes == ("client",) else [f"--auth-mode={mode}" for mode in modes]
    main = container(
        "argo-server", images["server"],
        resources_of({"cpu": "100m", "memory": "128Mi"}, {"cpu": "500m", "memory": "512Mi"}, component.resources),
        args=["server", *auth],
        ports=[("web", 2746)],
        liveness=http_probe("/", 2746, scheme="HTTPS", delay=20, period=20),
        readiness=http_probe("/", 2746, scheme="HTTPS", delay=10, period=20),
        mounts=[("tmp", "/tmp")],
    )
    pod = pod_spec([main], "argo-server", volumes=[empty_dir("tmp")], security=pod_security(NON_ROOT_UID))
    return annotate(operator_waivers(deployment("argo-server", ns, SERVER, pod, component.replicas or 1, labels={},
                                                pod_labels=ctx.identity_pod_labels("argo-server"))),
                    ctx.risk_annotations("argo-server-auth-mode-server"))


def _rbac(ns: str, version: str) -> list[Obj]:
    # 3.7 reads namespaces too (upstream's argo-cluster-role from v3.7.0)
    configmaps = ["configmaps", "namespaces"] if not version.startswith(("v3.5.", "v3.6.")) else ["configmaps"]
    controller_rules = [
        rule([""], ["pods", "pods/exec"], ["create", "get", "list", "watch", "update", "patch", "delete"]),
        rule([""], configmaps, ["get", "watch", "list"]),
        rule([""], ["persistentvolumeclaims", "persistentvolumeclaims/finalizers"], ["create", "update", "delete", "get"]),
        rule(ARGO_GROUP, ["workflows", "workflows/finalizers", "workflowtasksets", "workflowtasksets/finalizers",
                          "workflowartifactgctasks"], ["get", "list", "watch", "update", "patch", "delete", "create"]),
        rule(ARGO_GROUP, ["workflowtemplates", "workflowtemplates/finalizers", "clusterworkflowtemplates",
                          "clusterworkflowtemplates/finalizers"], ["get", "list", "watch"]),
        rule(ARGO_GROUP, ["workflowtaskresults"], ["list", "watch", "deletecollection"]),
        rule([""], ["serviceaccounts"], ["get", "list"]),
        rule(ARGO_GROUP, ["cronworkflows", "cronworkflows/finalizers"], ["get", "list", "watch", "update", "patch", "delete"]),
        rule([""], ["events"], ["create", "patch"]),
        rule(["policy"], ["poddisruptionbudgets"], ["create", "get", "delete"]),
        rule([""], ["secrets"], ["get"], names=["argo-workflows-agent-ca-certificates"]),
    ]
    server_rules = [
        rule([""], ["configmaps"], ["get", "watch", "list"]),
        rule([""], ["secrets"], ["get", "create"]),
        rule([""], ["pods", "pods/exec", "pods/log"], ["get", "list", "watch", "delete"]),
        rule([""], ["events"], ["watch", "create", "patch"]),
        rule([""], ["serviceaccounts"], ["get", "list", "watch"]),
        rule(ARGO_GROUP, ["eventsources", "sensors", "workflows", "workfloweventbindings", "workflowtemplates",
                          "cronworkflows", "clusterworkflowtemplates"],
             ["create", "get", "list", "watch", "update", "patch", "delete"]),
    ]
    read = ["get", "list", "watch"]
    write = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
    aggregates = []
    for level, verbs in (("view", read), ("edit", write), ("admin", write)):
        kinds = AGGREGATED_KINDS + (["workflowtasksets"] if level == "admin" else []) + ["workflowtaskresults"]
        aggregate = role("ClusterRole", f"argo-aggregate-to-{level}", None,
                         [rule(ARGO_GROUP, [k for kind in kinds for k in (kind, f"{kind}/finalizers")], verbs)],
                         labels={f"rbac.authorization.k8s.io/aggregate-to-{level}": "true"})
        aggregates.append(aggregate)
    return [
        role("ClusterRole", "argo-cluster-role", None, controller_rules),
        binding("ClusterRoleBinding", "argo-binding", None, "ClusterRole", "argo-cluster-role", [("argo", ns)]),
        role("Role", "argo-role", ns, [rule(["coordination.k8s.io"], ["leases"], ["create", "get", "update"]),
                                       rule([""], ["secrets"], ["get"])]),
        binding("RoleBinding", "argo-binding", ns, "Role", "argo-role", [("argo", ns)]),
        role("ClusterRole", "argo-server-cluster-role", None, server_rules),
        binding("ClusterRoleBinding", "argo-server-binding", None, "ClusterRole", "argo-server-cluster-role", [("argo-server", ns)]),
        *aggregates,
    ]
