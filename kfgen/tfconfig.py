"""TF_CONFIG exactly as the Kubeflow training operator (v1.8) injects it, computed from a TFJob.

The operator sets TF_CONFIG only on the container named `tensorflow`, and only when the job has
more than one replica in all. The cluster has one entry per replica type (lowercased, including
the evaluator), hosts `<job>-<type>-<i>.<namespace>.svc[.<CUSTOM_CLUSTER_DOMAIN>]:<port>` with the
port named `tfjob-port` of the `tensorflow` container (else 2222). Go's encoding/json writes the
cluster keys sorted and the struct fields in order: cluster, task, environment.

With `enableDynamicWorker` it writes the sparse form (SparseTFConfig: cluster, task; no
environment), still under "cluster": a worker sees itself and every parameter server
(`{"worker": {"<i>": host}, "ps": [...]}`, `"ps": null` when the job has none), a parameter server
only itself (`{"worker": {}, "ps": [host]}`), any other replica `{"worker": {}, "ps": []}`.
"""

from __future__ import annotations

import json
from typing import Callable

REPLICA_TYPES = ("Chief", "Evaluator", "Master", "PS", "Worker")
LEADERS = ("Chief", "Master")
CONTAINER = "tensorflow"  # the operator's TFJobDefaultContainerName
PORT_NAME = "tfjob-port"
DEFAULT_PORT = 2222

HostFn = Callable[[str, int, int], str]  # (lowercase replica type, index, port) -> host:port


def canonical_type(name: str) -> str:
    """The operator's CamelCase replica type for any casing (worker, WORKER -> Worker; ps -> PS)."""
    for known in REPLICA_TYPES:
        if known.lower() == name.lower():
            return known
    raise ValueError(f"unknown replica type {name!r} (one of: {', '.join(REPLICA_TYPES)})")


def replica_specs(tfjob: dict) -> dict[str, dict]:
    """tfReplicaSpecs keyed by canonical type, as the operator's defaulter renames them."""
    specs = (tfjob.get("spec") or {}).get("tfReplicaSpecs") or {}
    return {canonical_type(t): (s or {}) for t, s in specs.items()}


def replica_counts(tfjob: dict) -> dict[str, int]:
    """Replicas per canonical type; an unset count is 1, as the operator defaults it."""
    return {t: (1 if s.get("replicas") is None else int(s["replicas"])) for t, s in replica_specs(tfjob).items()}


def is_distributed(tfjob: dict) -> bool:
    return sum(replica_counts(tfjob).values()) != 1


def tensorflow_container(tfjob: dict, replica_type: str) -> dict | None:
    """The replica's container named `tensorflow` (the one the operator configures), if any."""
    spec = replica_specs(tfjob).get(canonical_type(replica_type)) or {}
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    return next((c for c in containers if c.get("name") == CONTAINER), None)


def port_of(tfjob: dict, replica_type: str) -> int:
    container = tensorflow_container(tfjob, replica_type) or {}
    for port in container.get("ports") or []:
        if port.get("name") == PORT_NAME:
            return int(port["containerPort"])
    return DEFAULT_PORT


def cluster_hosts(job: str, namespace: str, cluster_domain: str | None = None) -> HostFn:
    """The in-cluster host of a replica: its headless Service's DNS name."""
    suffix = f".{cluster_domain}" if cluster_domain else ""
    return lambda rtype, index, port: f"{job}-{rtype}-{index}.{namespace}.svc{suffix}:{port}"


def cluster_spec(tfjob: dict, host: HostFn) -> dict[str, list[str]]:
    counts = replica_counts(tfjob)
    return {rtype.lower(): [host(rtype.lower(), i, port_of(tfjob, rtype)) for i in range(count)]
            for rtype, count in sorted(counts.items(), key=lambda kv: kv[0].lower())}


def tf_config(tfjob: dict, replica_type: str, index: int, host: HostFn | None = None, cluster_domain: str | None = None) -> str | None:
    """The TF_CONFIG value of one replica, byte for byte; None when the operator sets none
    (a single replica in all, or no container named `tensorflow`)."""
    replica_type = canonical_type(replica_type)
    counts = replica_counts(tfjob)
    if replica_type not in counts:
        raise ValueError(f"the job has no {replica_type} replicas (it has: {', '.join(counts) or 'none'})")
    if not 0 <= index < counts[replica_type]:
        raise ValueError(f"{replica_type} has {counts[replica_type]} replicas; index {index} is out of range")
    if not is_distributed(tfjob) or tensorflow_container(tfjob, replica_type) is None:
        return None
    meta = tfjob.get("metadata") or {}
    host = host or cluster_hosts(meta["name"], meta.get("namespace", "default"), cluster_domain)
    cluster = cluster_spec(tfjob, host)
    rtype = replica_type.lower()
    task = {"type": rtype, "index": index}
    if (tfjob.get("spec") or {}).get("enableDynamicWorker"):
        sparse: dict = {"worker": {}, "ps": []}
        if rtype == "ps":
            sparse["ps"] = [cluster["ps"][index]]
        elif rtype == "worker":
            sparse = {"worker": {str(index): cluster["worker"][index]}, "ps": cluster.get("ps")}  # a job without PS: Go's nil slice, null
        return _go_json({"cluster": sparse, "task": task})
    return _go_json({"cluster": cluster, "task": task, "environment": "cloud"})


def _go_json(value: dict) -> str:
    """Compact JSON in the order given, as Go's encoding/json writes these structs."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
