"""Routes through the gateway: v3alpha1 Mappings, rendered next to the workload they route to (models,
the notebook hub), so every route is reviewed in the diff."""

from __future__ import annotations

from kfgen.objects import Obj, meta, obj

GETAMBASSADOR = "getambassador.io/v3alpha1"


def mapping(name: str, ns: str, hostname: str | None, prefix: str, service_ref: str, *, rewrite: str | None = "/",
            timeout_ms: int | None = None, websocket: bool = False, labels: dict | None = None, bypass_auth: bool = False,
            annotations: dict | None = None) -> Obj:
    """A v3alpha1 Mapping, rendered next to the workload it routes to."""
    spec: Obj = {"prefix": prefix, "service": service_ref}
    if hostname:
        spec["hostname"] = hostname
    if rewrite is not None:
        spec["rewrite"] = rewrite
    if timeout_ms is not None:
        spec["timeout_ms"] = timeout_ms
    if websocket:
        spec["allow_upgrade"] = ["websocket"]
        spec["idle_timeout_ms"] = 3600000
    if bypass_auth:
        spec["bypass_auth"] = True
    return obj(GETAMBASSADOR, "Mapping", meta(name, ns, labels=labels, annotations=annotations), spec=spec)
