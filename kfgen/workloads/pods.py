"""Pod-level pieces shared by the workload kinds."""

from __future__ import annotations

from kfgen.catalog.objects import Obj, RESTRICTED_CONTAINER, empty_dir, service_account
from kfgen.catalog.view import View
from kfgen.model import Resources
from kfgen.quantity import format_mebibytes, parse_quantity

WORKLOAD_LABEL = "kfgen.io/workload"
ACCELERATOR_LABEL = "kfgen.io/accelerator"
WORKLOAD_UID = 1000


def workload_service_account(view: View, name: str, role: str, automount: bool = False) -> Obj:
    """The ServiceAccount a workload kind runs as, with the environment's cloud identity."""
    return service_account(name, view.workloads.namespace, annotations=view.identity_annotations(role), automount=automount)


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
