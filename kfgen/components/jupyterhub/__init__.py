"""JupyterHub (the zero-to-jupyterhub 4.x equivalent): the hub with KubeSpawner and its proxy, with
the notebook profiles of spec.workloads.notebooks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from kfgen.components.jupyterhub.deviations import DEVIATIONS
from kfgen.components.jupyterhub.install import (
    install,
    notebook_accelerator_patch,
    notebook_objects,
)
from kfgen.components.package import ComponentPackage, Fail, Release, with_defaults
from kfgen.context import RenderContext
from kfgen.model import AcceleratorClass, Component
from kfgen.objects import Obj
from kfgen.quantity import canonical_quantity

_PROXY = {"4.4.0": "5.2.0", "4.0.0": "4.6.2"}  # the configurable-http-proxy each chart version pins


@dataclass(frozen=True)
class HubSettings:
    secret_name: str
    auth_type: str
    admins: tuple[str, ...]
    allowed_users: tuple[str, ...]
    allow_all: bool
    user_storage: str


class JupyterHub(ComponentPackage):
    name = "jupyterhub"
    title = "JupyterHub"
    releases = tuple(Release(v, {"hub": f"quay.io/jupyterhub/k8s-hub:{v}", "proxy": f"quay.io/jupyterhub/configurable-http-proxy:{p}"},
                             upstream=f"jupyterhub/{v}/chart") for v, p in _PROXY.items())
    namespace = "jupyterhub"
    deviations = DEVIATIONS
    runs = "notebooks"
    folder = Path(__file__).parent

    def settings(self, data: Mapping[str, Any]) -> HubSettings:
        values = with_defaults(data, self.settings_schema)
        auth = values["auth"]
        return HubSettings(values["secretName"], auth["type"], tuple(auth.get("admins") or ()), tuple(auth.get("allowedUsers") or ()),
                           auth.get("allowAll", auth["type"] == "dummy"), canonical_quantity(values["userStorage"]))

    def check(self, component: Component, fail: Fail) -> None:
        s = component.settings
        if component.enabled and not s.allow_all and not s.allowed_users and s.auth_type != "dummy":
            fail(("auth",), f"a {s.auth_type} login with no allowedUsers would let in anyone the provider knows; list allowedUsers, "
                            "or set allowAll: true")

    def install(self, component: Component, ctx: RenderContext) -> list[Obj]:
        return install(component, self.release(component.version), ctx)

    def workloads(self, ctx: RenderContext) -> list[Obj]:
        return notebook_objects(ctx.component(self.name), ctx)

    def accelerator_additions(self, klass: AcceleratorClass) -> dict[str, Any]:
        return notebook_accelerator_patch(klass)


PACKAGE = JupyterHub()
