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


def _column(name: str, path: str, kind: str = "string") -> dict:
    return {"jsonPath": path, "name": name, "type": kind}


# upstream's printer columns (v3alpha1)
_COLUMNS = {
    "Host": [_column("Hostname", ".spec.hostname"), _column("State", ".status.state"), _column("Phase Completed", ".status.phaseCompleted"),
             _column("Phase Pending", ".status.phasePending"), _column("Age", ".metadata.creationTimestamp", "date")],
    "Listener": [_column("Port", ".spec.port"), _column("Protocol", ".spec.protocol"), _column("Stack", ".spec.protocolStack"),
                 _column("StatsPrefix", ".spec.statsPrefix"), _column("Security", ".spec.securityModel"), _column("L7Depth", ".spec.l7Depth")],
    "Mapping": [_column("Source Host", ".spec.host"), _column("Source Prefix", ".spec.prefix"), _column("Dest Service", ".spec.service"),
                _column("State", ".status.state"), _column("Reason", ".status.reason")],
}


# The older versions upstream's CRDs list (v2 is their storage version). kfgen serves none of them,
# but lists them, so its CRDs apply over an upstream install whose status.storedVersions names them;
# objects stored as v2 are then read as v3alpha1 without conversion (see the README).
_OLD_VERSIONS = {"Host": ["v2"], "Listener": []}


def emissary_crds() -> list[dict]:
    out = []
    for kind, plural in _EMISSARY_KINDS:
        definition = crd("getambassador.io", kind, plural, _emissary_spec(kind), version="v3alpha1", categories=["ambassador-crds"],
                         status=kind in ("Host", "Mapping"), columns=_COLUMNS.get(kind), required=[])
        old = [{"name": name, "schema": {"openAPIV3Schema": PRESERVE}, "served": False, "storage": False}
               for name in _OLD_VERSIONS.get(kind, ["v1", "v2"])]
        definition["spec"]["versions"] = old + definition["spec"]["versions"]
        out.append(definition)
    return out
