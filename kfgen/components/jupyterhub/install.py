"""JupyterHub (the zero-to-jupyterhub 4.x equivalent): the hub with KubeSpawner, its proxy, and the
notebook profiles from spec.workloads.notebooks. No user placeholders or user scheduler: the
cluster autoscaler and the default scheduler place notebook pods.

Secrets: the hub reads its cookie secret and proxy token from a Secret created outside kfgen
(ExternalSecrets, SealedSecrets or `kubectl create secret`), so no value is ever in git.
"""

from __future__ import annotations

import hashlib
import html
import json
from pathlib import Path

from kfgen.accelerators import image_variant
from kfgen.components.ambassador.mappings import mapping
from kfgen.components.package import Release
from kfgen.context import RenderContext
from kfgen.model import AcceleratorClass, Component, thawed
from kfgen.objects import (
    CLOUD_METADATA,
    PRIVATE_NETWORKS,
    Obj,
    annotate,
    binding,
    config_map,
    container,
    deployment,
    empty_dir,
    http_probe,
    internet_egress,
    meta,
    namespace,
    network_policy,
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
from kfgen.quantity import parse_quantity
from kfgen.vocabulary import NOTEBOOK_PROFILES_LABEL, STORAGE_LABEL

BASE_URL = "/notebooks/"
NOTEBOOKS = "singleuser-server"  # the component label KubeSpawner gives notebook pods
NOTEBOOK_PORT = 8888  # where jupyterhub-singleuser listens (KubeSpawner's port)
HUB_CONFIG = Path(__file__).parent / "jupyterhub_config.py"  # the hub's configuration, as it runs in the hub
CONFIG_DIR = "/usr/local/etc/jupyterhub/kfgen"


def install(component: Component, release: Release, ctx: RenderContext) -> list[Obj]:
    ns = component.namespace
    images = {k: component.mirror.rewrite(v) for k, v in release.images.items()}
    secret = component.settings.secret_name
    data = hub_config(component, ctx)
    hub_rules = [
        rule([""], ["pods", "persistentvolumeclaims", "secrets", "services"], ["get", "watch", "list", "create", "delete"]),
        rule([""], ["events"], ["get", "watch", "list"]),
    ]
    secret_volume = {"name": "secret", "secret": {"defaultMode": 0o400, "secretName": secret}}
    hub = container(
        "hub", images["hub"],
        resources_of({"cpu": "200m", "memory": "512Mi"}, {"cpu": "1", "memory": "1Gi"}, component.resources),
        command=["jupyterhub", "--config", f"{CONFIG_DIR}/jupyterhub_config.py", "--upgrade-db"],
        ports=[("http", 8081)],
        liveness=http_probe(f"{BASE_URL}hub/health", "http", delay=300, period=10, timeout=3, failures=30),
        readiness=http_probe(f"{BASE_URL}hub/health", "http", delay=0, period=2, failures=1000),
        mounts=[("config", CONFIG_DIR), ("secret", "/usr/local/etc/jupyterhub/secret"), ("db", "/srv/jupyterhub"), ("tmp", "/tmp")],
        working_dir="/srv/jupyterhub",
    )
    hub_pod = pod_spec([hub], "hub", security=pod_security(1000, fs_group=1000), volumes=[
        {"configMap": {"name": "hub-config"}, "name": "config"},
        {"name": "db", "persistentVolumeClaim": {"claimName": "hub-db-dir"}},
        secret_volume, empty_dir("tmp")])
    # The proxy reads its token from the mounted Secret, not from a secret-valued environment variable.
    proxy_args = ("export CONFIGPROXY_AUTH_TOKEN=\"$(cat /etc/proxy/proxy-token)\" && exec configurable-http-proxy "
                  f"--ip= --api-ip= --api-port=8001 --default-target=http://hub.{ns}.svc:8081 "
                  f"--error-target=http://hub.{ns}.svc:8081{BASE_URL}hub/error --port=8000")
    proxy = container(
        "chp", images["proxy"],
        resources_of({"cpu": "100m", "memory": "128Mi"}, {"cpu": "500m", "memory": "512Mi"}),
        command=["/bin/sh", "-c", proxy_args],
        ports=[("http", 8000), ("api", 8001)],
        liveness=http_probe("/_chp_healthz", "http", delay=60, period=10, timeout=3, failures=30),
        readiness=http_probe("/_chp_healthz", "http", delay=0, period=2, failures=1000),
        mounts=[("secret", "/etc/proxy")],
    )
    proxy_pod = pod_spec([proxy], "proxy", automount=False, security=pod_security(65534), extra={"terminationGracePeriodSeconds": 60},
                         volumes=[{"name": "secret", "secret": {"defaultMode": 0o400, "items": [{"key": "proxy-token", "path": "proxy-token"}],
                                                                "secretName": secret}}])
    # Restart the hub when its configuration changes, including what this environment's Components add.
    checksum = hashlib.sha256(json.dumps({**data, **component_additions(ctx)}, sort_keys=True).encode()).hexdigest()
    pvc = obj("v1", "PersistentVolumeClaim", meta("hub-db-dir", ns, labels={STORAGE_LABEL: "default"}),
              spec={"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}})
    return [
        namespace(ns),
        service_account("hub", ns),
        service_account("proxy", ns, automount=False),
        role("Role", "hub", ns, hub_rules),
        binding("RoleBinding", "hub", ns, "Role", "hub", [("hub", ns)]),
        config_map("hub-config", ns, data, labels={NOTEBOOK_PROFILES_LABEL: "true"}),
        pvc,
        annotate(waive(operator_waivers(deployment("hub", ns, _selector("hub"), hub_pod, 1, labels=_labels("hub"), strategy="Recreate",
                                                   pod_labels={**_pod_labels("hub", release.version), **_access_labels("hub")},
                                                   pod_annotations={"checksum/config": checksum}), network_policy=True),
                       "CKV_K8S_40", "the k8s-hub image runs as its own user (uid 1000), who owns the hub's files"),
                 ctx.risk_annotations("hub-dummy-login", "hub-open-login")),
        service("hub", ns, _selector("hub"), [("hub", 8081, "http")], labels=_labels("hub"),
                annotations={"prometheus.io/path": f"{BASE_URL}hub/metrics", "prometheus.io/port": "8081", "prometheus.io/scrape": "true"}),
        operator_waivers(deployment("proxy", ns, _selector("proxy"), proxy_pod, 1, labels=_labels("proxy"), strategy="Recreate",
                                    pod_labels={**_pod_labels("proxy", release.version), **_access_labels("proxy")}), api=False,
                         network_policy=True),
        service("proxy-api", ns, _selector("proxy"), [(None, 8001, "api")], labels=_labels("proxy-api")),
        service("proxy-public", ns, _selector("proxy"), [("http", 80, "http")], labels=_labels("proxy-public")),
        *network_policies(ns),
    ]


def network_policies(ns: str) -> list[Obj]:
    """The z2jh chart's three NetworkPolicies with its default rules: who may reach the hub, the proxy
    and the notebooks is said by the chart's access labels; notebooks reach the internet (and DNS) but
    never private networks or the cloud metadata server, since their users run any code."""
    def to(component: str, *ports: int) -> Obj:
        return {"ports": [{"port": p} for p in ports], "to": [{"podSelector": {"matchLabels": _selector(component)}}]}

    def from_labelled(access: str, port: str) -> Obj:
        return {"from": [{"podSelector": {"matchLabels": {f"hub.jupyter.org/network-access-{access}": "true"}}}], "ports": [{"port": port}]}

    dns = {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
           "to": [{"ipBlock": {"cidr": CLOUD_METADATA}}, {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}},
                  *({"ipBlock": {"cidr": cidr}} for cidr in PRIVATE_NETWORKS)]}
    internet = internet_egress()
    private = {"to": [{"ipBlock": {"cidr": cidr}} for cidr in PRIVATE_NETWORKS]}  # the API server, in-cluster services
    metadata = {"to": [{"ipBlock": {"cidr": CLOUD_METADATA}}]}
    return [
        network_policy("hub", ns, {"matchLabels": _selector("hub")}, ingress=[from_labelled("hub", "http")],
                       egress=[to("proxy", 8001), to(NOTEBOOKS, NOTEBOOK_PORT), dns, internet, private, metadata]),
        network_policy("proxy", ns, {"matchLabels": _selector("proxy")},
                       ingress=[{"ports": [{"port": "http"}, {"port": "https"}]},  # from anywhere: the gateway's route
                                from_labelled("proxy-http", "http"), from_labelled("proxy-api", "api")],
                       egress=[to("hub", 8081), to(NOTEBOOKS, NOTEBOOK_PORT), dns, internet, private, metadata]),
        network_policy("singleuser", ns, {"matchLabels": _selector(NOTEBOOKS)}, ingress=[from_labelled("singleuser", "notebook-port")],
                       egress=[to("hub", 8081), to("proxy", 8000), to("autohttps", 8080, 8443), dns, internet]),
    ]


# The chart's access labels: which pods its NetworkPolicies let reach the hub, the proxy and the notebooks.
ACCESS = {"hub": ("proxy-api", "proxy-http", "singleuser"), "proxy": ("hub", "singleuser"), NOTEBOOKS: ("hub",)}


def _access_labels(component: str) -> dict[str, str]:
    return {f"hub.jupyter.org/network-access-{target}": "true" for target in ACCESS[component]}


def _selector(component: str) -> dict[str, str]:
    """The chart's selector labels (its release named jupyterhub)."""
    return {"app": "jupyterhub", "component": component, "release": "jupyterhub"}


def _labels(component: str) -> dict[str, str]:
    return {**_selector(component), "app.kubernetes.io/component": component, "app.kubernetes.io/instance": "jupyterhub",
            "app.kubernetes.io/name": "jupyterhub"}


def _pod_labels(component: str, version: str) -> dict[str, str]:
    """The chart's pod labels beside the selector's: the app.kubernetes.io ones from chart 4.1 on."""
    if version.startswith(("3.", "4.0.")):
        return {}
    return {k: v for k, v in _labels(component).items() if k not in _selector(component)}


def notebook_objects(component: Component, ctx: RenderContext) -> list[Obj]:
    """The notebook pods' ServiceAccount and the hub's route through the gateway."""
    ns = component.namespace
    objects = [service_account("notebook", ns, annotations=ctx.identity_annotations("notebooks"), automount=False)]
    gateway = ctx.component("ambassador")
    if gateway.enabled:
        objects.append(mapping("jupyterhub", ns, gateway.settings.hostname, BASE_URL, f"proxy-public.{ns}:80",
                               bypass_auth=bool(gateway.settings.auth),  # the hub has its own login
                               rewrite="", websocket=True))
    return objects


def hub_config(component: Component, ctx: RenderContext) -> dict[str, str]:
    """The hub ConfigMap's data (and, per environment, what the accelerator Components add)."""
    gateway = ctx.component("ambassador")
    hostname = gateway.settings.hostname or "localhost"
    scheme = "https" if gateway.settings.tls_secret else "http"
    settings = {
        "auth": {"admins": sorted(component.settings.admins), "allowAll": component.settings.allow_all,
                 "allowedUsers": sorted(component.settings.allowed_users), "oauth": thawed(component.settings.oauth),
                 "type": component.settings.auth_type},
        "automountToken": False,
        "baseUrl": BASE_URL,
        "namespace": component.namespace,
        "oauthCallbackUrl": f"{scheme}://{hostname}{BASE_URL}hub/oauth_callback",
        # KubeSpawner adds app: jupyterhub and component: singleuser-server; with these, the chart's selectors
        "podLabels": dict(sorted({"app.kubernetes.io/name": "notebook", "release": "jupyterhub", **_access_labels(NOTEBOOKS),
                                  **ctx.identity_pod_labels("notebooks")}.items())),
        "userStorage": component.settings.user_storage,
        "culler": idle_culler(component),
    }
    profiles = []
    for profile in ctx.workloads.enabled("notebooks"):
        klass = ctx.accelerator(profile.accelerator)
        override = {
            "cpu_guarantee": _cores(profile.resources.requests["cpu"]), "cpu_limit": _cores(profile.resources.limits["cpu"]),
            "image": image_variant(profile.image, klass),
            "mem_guarantee": _bytes(profile.resources.requests["memory"]), "mem_limit": _bytes(profile.resources.limits["memory"]),
        }
        # KubeSpawner's spawn form inserts these unescaped (its Jinja environment has no autoescape): plain text only
        entry = {"description": html.escape(profile.description), "display_name": html.escape(profile.display_name),
                 "kubespawner_override": override,
                 "slug": profile.name}
        if profile.max_age:
            override["extra_pod_config"] = {"activeDeadlineSeconds": profile.max_age}  # the kubelet stops the pod then
        if profile.default:
            entry["default"] = True
        if profile.accelerator:
            entry["accelerator"] = profile.accelerator
        profiles.append(entry)
    return {
        "jupyterhub_config.py": HUB_CONFIG.read_text(),
        "profiles.json": json.dumps(profiles, indent=2, sort_keys=True) + "\n",
        "settings.json": json.dumps(settings, indent=2, sort_keys=True) + "\n",
    }


IDLE_CULLER = "jupyterhub-idle-culler"
# the role zero-to-jupyterhub gives the culler (without --cull-users, which kfgen does not set): just what it needs
IDLE_CULLER_SCOPES = ["list:users", "read:users:activity", "read:servers", "delete:servers"]


def idle_culler(component: Component) -> dict | None:
    """The idle culler hub service (its command, as zero-to-jupyterhub builds it from its cull values)
    and its role's scopes; None when it is off. The k8s-hub image has jupyterhub-idle-culler."""
    culler = component.settings.culler
    if culler is None:
        return None
    command = ["python3", "-m", "jupyterhub_idle_culler", f"--url=http://localhost:8081{BASE_URL}hub/api",
               f"--timeout={culler['timeout']}", f"--cull-every={culler['every']}", f"--concurrency={culler['concurrency']}"]
    if culler["maxAge"]:
        command.append(f"--max-age={culler['maxAge']}")
    return {"command": command, "name": IDLE_CULLER, "scopes": IDLE_CULLER_SCOPES}


def component_additions(ctx: RenderContext) -> dict[str, str]:
    """The ConfigMap keys the environment's cloud and accelerator Components add."""
    if ctx.env is None:
        return {}
    added = {f"accelerator.{klass.name}.json": accelerator_overrides(klass) for klass in ctx.env.accelerators}
    if ctx.env.cloud.storage_class:
        added["storage-class"] = ctx.env.cloud.storage_class
    return added


def accelerator_overrides(klass: AcceleratorClass) -> str:
    """KubeSpawner overrides for notebooks on an accelerator class (added by the class's Component)."""
    override: Obj = {"node_selector": {"kubernetes.io/os": "linux", **klass.node_selector}}
    if klass.resource:
        override["extra_resource_guarantees"] = {klass.resource: str(klass.count)}
        override["extra_resource_limits"] = {klass.resource: str(klass.count)}
    if klass.tolerations:
        override["tolerations"] = [dict(t) for t in klass.tolerations]
    if klass.instance_types:
        override["node_affinity_required"] = [{"matchExpressions": [
            {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": list(klass.instance_types)}]}]
    return json.dumps(override, indent=2, sort_keys=True) + "\n"


def _cores(quantity: str) -> float:
    return float(parse_quantity(quantity)[0])


def _bytes(quantity: str) -> int:
    return int(parse_quantity(quantity)[0])


def notebook_accelerator_patch(klass: AcceleratorClass) -> dict[str, tuple[dict, list]]:
    """What an accelerator class's Component adds for notebooks: its KubeSpawner overrides, in the hub's ConfigMap."""
    target = {"kind": "ConfigMap", "labelSelector": f"{NOTEBOOK_PROFILES_LABEL}=true", "version": "v1"}
    return {"notebooks.yaml": (target, [{"op": "add", "path": f"/data/accelerator.{klass.name}.json", "value": accelerator_overrides(klass)}])}
