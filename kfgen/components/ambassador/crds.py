"""Emissary-ingress CRDs: v3alpha1 only, no conversion webhook."""

from __future__ import annotations

from kfgen.components.crd import INTEGER, PRESERVE, STRING, Schema, array, crd, props, string_map

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


def emissary_crds() -> list[dict]:
    out = []
    for kind, plural in _EMISSARY_KINDS:
        out.append(crd("getambassador.io", kind, plural, _emissary_spec(kind), version="v3alpha1",
                       categories=["ambassador-crds"], status=kind in ("Host", "Mapping", "TCPMapping"), required=[]))
    return out
