"""Small builders for the Kubernetes objects every component needs, as plain dicts.

Conventions every object kfgen renders follows: requests and limits on every container, a pinned
image, non-root with a restricted security context where upstream allows it, no empty fields.
"""

from __future__ import annotations

from typing import Any

from kfgen.model import Resources
from kfgen.vocabulary import CHECKOV_SKIP, NETWORKING_API, WAIVER_PREFIX

Obj = dict[str, Any]

SECCOMP = {"type": "RuntimeDefault"}
RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "seccompProfile": SECCOMP,
}
NON_ROOT_UID = 65532  # the distroless "nonroot" user: operators whose images run as any user
WEBHOOK_CERT_DIR = "/tmp/k8s-webhook-server/serving-certs"  # where controller-runtime's webhook server reads its certificate

# Reasons for checkov checks kfgen's own manifests do not follow, stated once.
NO_DIGESTS = "images are pinned by tag, not digest; `kfgen images` lists them for a mirror that pins digests"
NO_NETWORK_POLICY = ("upstream's install has no NetworkPolicy for this operator: the API server (its webhooks), Prometheus "
                     "and the gateway must reach it, and which addresses those have depends on the cluster's network; add "
                     "yours with extraResources")
CALLS_THE_API = "this component calls the Kubernetes API with its ServiceAccount token"


def waive(o: Obj, policy: str, reason: str) -> Obj:
    """Record an explicit, reviewable exception on the object itself: kfgen's policies read
    `waivers.kfgen.io/<ID>`, checkov reads `checkov.io/skip<N>: <check>=<reason>`."""
    annotations = o["metadata"].setdefault("annotations", {})
    if policy.startswith("KFG"):
        annotations[WAIVER_PREFIX + policy] = reason
    else:
        taken = {v.split("=", 1)[0] for k, v in annotations.items() if k.startswith(CHECKOV_SKIP)}
        if policy not in taken:
            skips = sorted([v for k, v in annotations.items() if k.startswith(CHECKOV_SKIP)] + [f"{policy}={reason}"])
            for key in [k for k in annotations if k.startswith(CHECKOV_SKIP)]:
                del annotations[key]
            annotations.update({f"{CHECKOV_SKIP}{i}": v for i, v in enumerate(skips, 1)})
    o["metadata"]["annotations"] = dict(sorted(annotations.items()))
    return o


def operator_waivers(o: Obj, *, api: bool = True, network_policy: bool = False) -> Obj:
    """The checkov checks every operator Deployment of kfgen waives, with their reasons (`network_policy`:
    a NetworkPolicy of kfgen's selects its pods, so that check is not waived)."""
    waive(o, "CKV_K8S_43", NO_DIGESTS)
    if not network_policy:
        waive(o, "CKV2_K8S_6", NO_NETWORK_POLICY)
    if api:
        waive(o, "CKV_K8S_38", CALLS_THE_API)
    return o


def annotate(o: Obj, annotations: dict[str, str]) -> Obj:
    """Add annotations to an object (in place; none added leaves no empty map)."""
    if annotations:
        o["metadata"]["annotations"] = dict(sorted({**o["metadata"].get("annotations", {}), **annotations}.items()))
    return o


def meta(name: str, namespace: str | None = None, labels: dict | None = None, annotations: dict | None = None) -> Obj:
    """metadata with empty maps left out (an empty map is a permanent diff in Argo CD)."""
    out: Obj = {"name": name}
    if namespace:
        out["namespace"] = namespace
    if labels:
        out["labels"] = dict(sorted(labels.items()))
    if annotations:
        out["annotations"] = dict(sorted(annotations.items()))
    return out


def obj(api_version: str, kind: str, metadata: Obj, **fields: Any) -> Obj:
    out: Obj = {"apiVersion": api_version, "kind": kind, "metadata": metadata}
    out.update({k: v for k, v in fields.items() if v is not None})
    return out


def namespace(name: str, level: str = "restricted", labels: dict | None = None, *, enforce: str | None = None,
              annotations: dict | None = None) -> Obj:
    """A Namespace with Pod Security admission auditing and warning at `level`, and enforcing it (or
    `enforce`, when pods someone else writes need a looser level: the audit and the warnings stay)."""
    pss = {f"pod-security.kubernetes.io/{mode}": level for mode in ("audit", "warn")}
    pss["pod-security.kubernetes.io/enforce"] = enforce or level
    pss["pod-security.kubernetes.io/enforce-version"] = "latest"
    return obj("v1", "Namespace", meta(name, labels={**pss, **(labels or {})}, annotations=annotations))


def service_account(name: str, ns: str, annotations: dict | None = None, labels: dict | None = None, automount: bool | None = None) -> Obj:
    out = obj("v1", "ServiceAccount", meta(name, ns, labels=labels, annotations=annotations))
    if automount is not None:
        out["automountServiceAccountToken"] = automount
    return out


def rule(groups: list[str], resources: list[str], verbs: list[str], names: list[str] | None = None) -> Obj:
    out: Obj = {"apiGroups": groups, "resources": resources}
    if names:
        out["resourceNames"] = names
    out["verbs"] = verbs
    return out


def role(kind: str, name: str, ns: str | None, rules: list[Obj], labels: dict | None = None) -> Obj:
    return obj("rbac.authorization.k8s.io/v1", kind, meta(name, ns if kind == "Role" else None, labels=labels), rules=rules)


def binding(kind: str, name: str, ns: str | None, role_kind: str, role_name: str, subjects: list[tuple[str, str]],
            labels: dict | None = None) -> Obj:
    """A RoleBinding or ClusterRoleBinding to ServiceAccounts given as (name, namespace)."""
    return obj("rbac.authorization.k8s.io/v1", kind, meta(name, ns if kind == "RoleBinding" else None, labels=labels),
               roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role_name},
               subjects=[{"kind": "ServiceAccount", "name": n, "namespace": s} for n, s in subjects])


def resources_of(requests: dict, limits: dict, override: Resources | None = None) -> Obj:
    """Requests and limits, with a component's user override merged over the catalog's defaults."""
    requests, limits = dict(requests), dict(limits)
    if override:
        requests.update(override.requests)
        limits.update(override.limits)
    return {"limits": dict(sorted(limits.items())), "requests": dict(sorted(requests.items()))}


def container(name: str, image: str, resources: Obj, *, command: list[str] | None = None, args: list[str] | None = None,
              ports: list[tuple[str | None, int]] | None = None, env: list[Obj] | None = None, mounts: list[tuple] | None = None,
              liveness: Obj | None = None, readiness: Obj | None = None, security: Obj | None = None,
              working_dir: str | None = None) -> Obj:
    """A container; `mounts` are (volume name, mount path[, read only]); security defaults to restricted."""
    out: Obj = {"name": name, "image": image, "imagePullPolicy": "Always"}
    if command:
        out["command"] = command
    if args:
        out["args"] = args
    if working_dir:
        out["workingDir"] = working_dir
    if env:
        out["env"] = env
    if ports:
        out["ports"] = [{"containerPort": port, **({"name": port_name} if port_name else {}), "protocol": "TCP"} for port_name, port in ports]
    if liveness:
        out["livenessProbe"] = liveness
    if readiness:
        out["readinessProbe"] = readiness
    out["resources"] = resources
    out["securityContext"] = security if security is not None else dict(RESTRICTED_CONTAINER)
    if mounts:
        out["volumeMounts"] = [{"mountPath": m[1], "name": m[0], **({"readOnly": True} if m[2:] and m[2] else {})} for m in mounts]
    return out


def webhook_cert(secret: str) -> tuple[tuple, Obj]:
    """(the read-only mount, the volume) of a webhook server's certificate Secret."""
    return ("cert", WEBHOOK_CERT_DIR, True), secret_volume("cert", secret)


def http_probe(path: str, port: str | int, scheme: str = "HTTP", delay: int = 10, period: int = 10, *, timeout: int | None = None,
               failures: int | None = None) -> Obj:
    """An HTTP probe; timeout and failure threshold only where upstream sets them (else the API's defaults, 1 and 3)."""
    out: Obj = {"httpGet": {"path": path, "port": port, "scheme": scheme}, "periodSeconds": period}
    if delay:  # the API server drops a zero delay (omitempty): sending one would never match what is stored
        out["initialDelaySeconds"] = delay
    if timeout is not None:
        out["timeoutSeconds"] = timeout
    if failures is not None:
        out["failureThreshold"] = failures
    return dict(sorted(out.items()))


def env_var(name: str, value: str) -> Obj:
    """An empty value is left out: the API server drops it (omitempty), so a Deployment sent with
    `value: ""` would never read back as sent and Argo CD would show it out of sync."""
    return {"name": name, "value": value} if value else {"name": name}


def env_field(name: str, field_path: str) -> Obj:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": field_path}}}


def pod_security(run_as_user: int | None = None, fs_group: int | None = None) -> Obj:
    out: Obj = {"runAsNonRoot": True, "seccompProfile": SECCOMP}
    if run_as_user is not None:
        out["runAsUser"] = run_as_user
        out["runAsGroup"] = run_as_user
    if fs_group is not None:
        out["fsGroup"] = fs_group
    return out


def pod_spec(containers: list[Obj], service_account: str, *, volumes: list[Obj] | None = None, security: Obj | None = None,
             automount: bool = True, node_selector: dict | None = None, extra: Obj | None = None) -> Obj:
    spec: Obj = {"automountServiceAccountToken": automount, "containers": containers,
                 "nodeSelector": node_selector or {"kubernetes.io/os": "linux"},
                 "securityContext": security or pod_security(), "serviceAccountName": service_account}
    if volumes:
        spec["volumes"] = volumes
    spec.update(extra or {})
    return dict(sorted(spec.items()))


def deployment(name: str, ns: str, selector: dict[str, str], pod: Obj, replicas: int = 1, *, labels: dict | None = None,
               pod_labels: dict | None = None, pod_annotations: dict | None = None, strategy: str | None = None) -> Obj:
    """A Deployment selecting its pods by `selector`, upstream's own selector labels (a selector cannot
    change on a live Deployment, so kfgen keeps upstream's). `labels` go on the Deployment (default:
    the selector's), `pod_labels` on its pods next to the selector's."""
    template_meta: Obj = {"labels": dict(sorted({**selector, **(pod_labels or {})}.items()))}
    if pod_annotations:
        template_meta["annotations"] = dict(sorted(pod_annotations.items()))
    spec: Obj = {"replicas": replicas, "revisionHistoryLimit": 5, "selector": {"matchLabels": dict(sorted(selector.items()))}}
    if strategy:
        spec["strategy"] = {"type": strategy}
    spec["template"] = {"metadata": template_meta, "spec": pod}
    return obj("apps/v1", "Deployment", meta(name, ns, labels=selector if labels is None else labels), spec=spec)


def service(name: str, ns: str, selector: dict[str, str], ports: list[tuple[str | None, int, int | str]], *, type_: str = "ClusterIP",
            labels: dict | None = None, annotations: dict | None = None, headless: bool = False) -> Obj:
    """A Service selecting pods by `selector`; ports are (name, port, targetPort)."""
    spec: Obj = {}
    if headless:
        spec["clusterIP"] = "None"
    spec["ports"] = [{**({"name": n} if n else {}), "port": p, "protocol": "TCP", "targetPort": t} for n, p, t in ports]
    spec["selector"] = dict(sorted(selector.items()))
    spec["type"] = type_
    return obj("v1", "Service", meta(name, ns, labels=labels, annotations=annotations), spec=spec)


# Address ranges NetworkPolicies name (RFC 1918 private networks, and the clouds' metadata server).
PRIVATE_NETWORKS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
CLOUD_METADATA = "169.254.169.254/32"


def network_policy(name: str, ns: str, pods: Obj, *, ingress: list[Obj] | None = None, egress: list[Obj] | None = None) -> Obj:
    """A NetworkPolicy for the pods `pods` selects; a policy type is set for each list given (an
    empty list denies that direction)."""
    spec: Obj = {"podSelector": pods, "policyTypes": [t for t, rules in (("Ingress", ingress), ("Egress", egress)) if rules is not None]}
    if ingress:
        spec["ingress"] = ingress
    if egress:
        spec["egress"] = egress
    return obj(NETWORKING_API, "NetworkPolicy", meta(name, ns), spec=spec)


def dns_egress() -> Obj:
    """Egress to the cluster's DNS: port 53 of the pods in kube-system."""
    return {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
            "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}]}


def internet_egress() -> Obj:
    """Egress to public addresses only: no private network, no cloud metadata server."""
    return {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": [*PRIVATE_NETWORKS, CLOUD_METADATA]}}]}


def config_map(name: str, ns: str, data: dict[str, str], labels: dict | None = None, annotations: dict | None = None) -> Obj:
    return obj("v1", "ConfigMap", meta(name, ns, labels=labels, annotations=annotations), data=dict(sorted(data.items())))


def empty_dir(name: str, medium: str | None = None, size: str | None = None) -> Obj:
    spec: Obj = {}
    if medium:
        spec["medium"] = medium
    if size:
        spec["sizeLimit"] = size
    return {"emptyDir": spec, "name": name}


def secret_volume(name: str, secret: str, optional: bool = False) -> Obj:
    source: Obj = {"secretName": secret}
    if optional:
        source["optional"] = True
    return {"name": name, "secret": source}
