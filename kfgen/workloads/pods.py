"""Pod-level pieces shared by the workload kinds."""

from __future__ import annotations

from kfgen.catalog.objects import Obj, RESTRICTED_CONTAINER, empty_dir
from kfgen.model import Resources
from kfgen.quantity import format_mebibytes, parse_quantity

WORKLOAD_LABEL = "kfgen.io/workload"
ACCELERATOR_LABEL = "kfgen.io/accelerator"
WORKLOAD_UID = 1000


def workload_security() -> Obj:
    return {"fsGroup": WORKLOAD_UID, "runAsGroup": WORKLOAD_UID, "runAsNonRoot": True, "runAsUser": WORKLOAD_UID,
            "seccompProfile": {"type": "RuntimeDefault"}}


def container_security() -> Obj:
    return dict(RESTRICTED_CONTAINER)


def env_list(env: tuple[tuple[str, str], ...], extra: dict[str, str] | None = None) -> list[Obj]:
    merged = dict(env)
    merged.update(extra or {})
    return [{"name": k, "value": v} for k, v in sorted(merged.items())]


def shm_volume(resources: Resources) -> Obj:
    """A memory-backed /dev/shm of half the memory limit (it counts against the limit)."""
    half = parse_quantity(resources.limits["memory"])[0] / 2
    return empty_dir("dshm", medium="Memory", size=format_mebibytes(half))
