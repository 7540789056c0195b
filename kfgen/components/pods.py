"""Pod-level pieces shared by the workload kinds.

Accelerator contract (what the accelerator Components patch, and what your own manifests need to
opt in): the object carries `kfgen.io/accelerator: <class>` (TFJobs: `accelerator.kfgen.io/<replica
type>: <class>`), its first container is the one that gets the device, and that container has
`resources.limits` and `resources.requests`. Node selector and tolerations of such pods belong to
the Component.
"""

from __future__ import annotations

from kfgen.context import RenderContext
from kfgen.model import Resources
from kfgen.objects import RESTRICTED_CONTAINER, Obj, empty_dir, service_account
from kfgen.quantity import format_mebibytes, parse_quantity

WORKLOAD_UID = 1000


def workload_service_account(ctx: RenderContext, name: str, role: str, automount: bool = False) -> Obj:
    """The ServiceAccount a workload kind runs as, with the environment's cloud identity."""
    return service_account(name, ctx.workloads.namespace, annotations=ctx.identity_annotations(role), automount=automount)


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
