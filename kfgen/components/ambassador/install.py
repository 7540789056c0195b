"""Emissary-ingress 3.10 (Ambassador): the gateway in front of models and notebooks.

CRDs are rendered v3alpha1-only, with no conversion webhook (the emissary-crds chart's
`enableLegacyVersions=false` mode), so no emissary-apiext Deployment is needed: every object kfgen
renders is v3alpha1, and Seldon's own v2 Mappings are turned off.
"""

from __future__ import annotations

from typing import Any, Mapping

from kfgen.components.ambassador.crds import emissary_crds
from kfgen.components.ambassador.mappings import GETAMBASSADOR
from kfgen.components.package import Release
from kfgen.context import RenderContext
from kfgen.model import Component
from kfgen.objects import (
    RESTRICTED_CONTAINER,
    Obj,
    annotate,
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
)

INSTANCE = {"app.kubernetes.io/instance": "emissary-ingress", "app.kubernetes.io/name": "emissary-ingress"}  # upstream's selector


def install(component: Component, release: Release, ctx: RenderContext) -> list[Obj]:
    ns = component.namespace
    image = component.mirror.rewrite(release.images["gateway"])
    security = dict(RESTRICTED_CONTAINER, readOnlyRootFilesystem=False)  # Envoy config is written under /ambassador
    gateway = container(
        "ambassador", image,
        resources_of({"cpu": "200m", "memory": "256Mi"}, {"cpu": "1", "memory": "600Mi"}, component.resources),
        env=[env_field("HOST_IP", "status.hostIP"), env_field("AMBASSADOR_NAMESPACE", "metadata.namespace"),
             env_var("AGENT_CONFIG_RESOURCE_NAME", "emissary-ingress-agent-cloud-token")],
        ports=[("http", 8080), ("https", 8443), ("admin", 8877)],
        liveness=http_probe("/ambassador/v0/check_alive", "admin", delay=30, period=3, failures=3),
        readiness=http_probe("/ambassador/v0/check_ready", "admin", delay=30, period=3, failures=3),
        security=security,
        mounts=[("ambassador-pod-info", "/tmp/ambassador-pod-info", True)],
    )
    pod_info = {"downwardAPI": {"items": [{"fieldRef": {"fieldPath": "metadata.labels"}, "path": "labels"}]}, "name": "ambassador-pod-info"}
    pod = pod_spec([gateway], "emissary-ingress", volumes=[pod_info], security=pod_security(8888),
                   extra={"terminationGracePeriodSeconds": 0})
    # upstream's emissary-ingress-watch and emissary-ingress-crd rules, written into the one ClusterRole they aggregate into
    rules = [
        rule([""], ["namespaces", "services", "secrets", "configmaps", "endpoints"], ["get", "list", "watch"]),
        rule(["getambassador.io", "gateway.getambassador.io"], ["*"], ["get", "list", "watch", "update", "patch", "create", "delete"]),
        rule(["getambassador.io"], ["mappings/status"], ["update"]),
        rule(["networking.internal.knative.dev"], ["clusteringresses", "ingresses"], ["get", "list", "watch"]),
        rule(["networking.x-k8s.io"], ["*"], ["get", "list", "watch"]),
        rule(["networking.internal.knative.dev"], ["ingresses/status", "clusteringresses/status"], ["update"]),
        rule(["extensions", "networking.k8s.io"], ["ingresses", "ingressclasses"], ["get", "list", "watch"]),
        rule(["extensions", "networking.k8s.io"], ["ingresses/status"], ["update"]),
        rule(["apiextensions.k8s.io"], ["customresourcedefinitions"], ["get", "list", "watch", "delete"]),
    ]
    return [
        namespace(ns),
        *emissary_crds(),
        service_account("emissary-ingress", ns, labels=INSTANCE),
        role("ClusterRole", "emissary-ingress", None, rules, labels=INSTANCE),
        binding("ClusterRoleBinding", "emissary-ingress", None, "ClusterRole", "emissary-ingress", [("emissary-ingress", ns)], labels=INSTANCE),
        _gateway_waivers(deployment("emissary-ingress", ns, INSTANCE, pod, component.replicas or 3, pod_labels={"profile": "main"},
                                    pod_annotations={"consul.hashicorp.com/connect-inject": "false", "sidecar.istio.io/inject": "false"})),
        _public_service(ns, ctx),
        service("emissary-ingress-admin", ns, INSTANCE, [("ambassador-admin", 8877, "admin"), ("ambassador-snapshot", 8005, 8005)],
                labels={**INSTANCE, "service": "ambassador-admin"}),
        obj(GETAMBASSADOR, "Module", meta("ambassador", ns, labels={**INSTANCE, "app.kubernetes.io/component": "emissary-ingress"}),
            spec={"config": {"diagnostics": {"allow_non_local": True, "enabled": False}}}),
        *_listeners(ns),
        annotate(_host(component), ctx.risk_annotations("plain-http")),
        *([_auth_service(ns, component.settings.auth)] if component.settings.auth else []),
    ]


def _auth_service(ns: str, auth: Mapping[str, Any]) -> Obj:
    """The gateway's external authentication: every request is checked first; when the auth service
    does not answer, the request is refused (never let through)."""
    spec: Obj = {"auth_service": auth["service"], "failure_mode_allow": False, "proto": auth["protocol"],
                 "status_on_error": {"code": 503}, "timeout_ms": auth["timeoutMs"]}
    if auth["protocol"] == "grpc":
        spec["protocol_version"] = "v3"
    if "pathPrefix" in auth:
        spec["path_prefix"] = auth["pathPrefix"]
    for key, field in (("allowedRequestHeaders", "allowed_request_headers"), ("allowedAuthorizationHeaders", "allowed_authorization_headers")):
        if key in auth:
            spec[field] = list(auth[key])
    return obj(GETAMBASSADOR, "AuthService", meta("gateway-auth", ns), spec=spec)


def _gateway_waivers(o: Obj) -> Obj:
    operator_waivers(o)
    waive(o, "CKV_K8S_22", "Emissary writes its generated Envoy configuration under /ambassador in the image")
    return waive(o, "CKV_K8S_40", "the emissary image's files belong to its own user, uid 8888")


def _public_service(ns: str, ctx: RenderContext) -> Obj:
    """The gateway's Service: the cloud's load balancer, internal or external per environment."""
    env = ctx.env
    kind = env.cloud.service_type if env else "LoadBalancer"
    annotations = dict(env.cloud.load_balancer.get(env.exposure, {})) if env and kind == "LoadBalancer" else None
    svc = service("emissary-ingress", ns, {**INSTANCE, "profile": "main"}, [("http", 80, 8080), ("https", 443, 8443)],
                  type_=kind, labels={**INSTANCE, "app.kubernetes.io/component": "ambassador-service"}, annotations=annotations)
    if kind == "LoadBalancer":
        svc["spec"]["externalTrafficPolicy"] = "Local"
    return svc


def _listeners(ns: str) -> list[Obj]:
    def listener(name: str, port: int, protocol: str) -> Obj:
        return obj(GETAMBASSADOR, "Listener", meta(name, ns), spec={
            "hostBinding": {"namespace": {"from": "ALL"}}, "port": port, "protocol": protocol, "securityModel": "XFP"})
    return [listener("emissary-ingress-http", 8080, "HTTP"), listener("emissary-ingress-https", 8443, "HTTPS")]


def _host(component: Component) -> Obj:
    hostname, secret = component.settings.hostname, component.settings.tls_secret
    spec: Obj = {"acmeProvider": {"authority": "none"}, "hostname": hostname}
    if secret:
        spec["requestPolicy"] = {"insecure": {"action": "Redirect"}}
        spec["tlsSecret"] = {"name": secret}
    else:
        spec["requestPolicy"] = {"insecure": {"action": "Route"}}
    return obj(GETAMBASSADOR, "Host", meta("ml-platform", component.namespace), spec=spec)
