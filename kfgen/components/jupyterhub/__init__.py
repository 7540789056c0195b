"""JupyterHub (the zero-to-jupyterhub 4.x equivalent): the hub with KubeSpawner and its proxy, with
the notebook profiles of spec.workloads.notebooks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from kfgen.components.jupyterhub.deviations import DEVIATIONS
from kfgen.components.jupyterhub.install import BASE_URL, install, notebook_accelerator_patch, notebook_objects
from kfgen.components.package import ComponentPackage, Fail, GatewayRoute, Release, with_defaults
from kfgen.context import RenderContext
from kfgen.model import AcceleratorClass, Component, Environment, frozen
from kfgen.objects import Obj
from kfgen.quantity import canonical_quantity
from kfgen.risks import TakenRisk

_PROXY = {"4.4.0": "5.2.0", "4.0.0": "4.6.2"}  # the configurable-http-proxy each chart version pins


@dataclass(frozen=True)
class HubSettings:
    secret_name: str
    auth_type: str | None  # None: not chosen (an input error while the hub is enabled)
    admins: tuple[str, ...]
    allowed_users: tuple[str, ...]
    allow_all: bool
    oauth: Mapping[str, Any]  # generic-oauth: the provider's endpoints, as written (camelCase keys)
    user_storage: str
    culler: Mapping[str, Any] | None = None  # the idle culler's settings (enabled, timeout, every, concurrency, maxAge); None: off


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
        culler = values["culler"]
        return HubSettings(values["secretName"], auth.get("type"), tuple(auth.get("admins") or ()), tuple(auth.get("allowedUsers") or ()),
                           auth["allowAll"], frozen(auth.get("oauth") or {}), canonical_quantity(values["userStorage"]),
                           frozen(culler) if culler["enabled"] else None)

    def check(self, component: Component, fail: Fail) -> None:
        s = component.settings
        if not component.installed:
            return
        if s.auth_type is None:
            fail(("auth",), "the hub needs a login (auth.type): github or generic-oauth with allowedUsers, or dummy in a throwaway "
                            "environment that accepts the risk hub-dummy-login")
        elif s.allow_all and s.allowed_users:
            fail(("auth", "allowedUsers"), "has no effect with allowAll: true, which lets everyone in; remove one of them")
        elif s.auth_type != "dummy" and not s.allow_all and not s.allowed_users:
            fail(("auth",), f"a {s.auth_type} login with no allowedUsers lets nobody in; list allowedUsers (or set allowAll: true and "
                            "accept the risk hub-open-login)")
        if s.auth_type == "generic-oauth" and not s.oauth:
            fail(("auth",), "generic-oauth needs the provider's endpoints: auth.oauth.authorizeUrl, tokenUrl and userdataUrl")
        elif s.oauth and s.auth_type != "generic-oauth":
            fail(("auth", "oauth"), f"applies to generic-oauth only; this hub logs in with {s.auth_type}")

    def check_environment(self, component: Component, env: Environment, fail: Fail) -> None:
        if component.installed and component.settings.auth_type == "dummy" and env.exposure == "external":
            fail(("components", self.name, "auth", "type"), f"the dummy login is never allowed with external exposure "
                                                            f"(environment {env.name!r}); choose github or generic-oauth")

    def routes(self, component: Component, env: Environment) -> list[GatewayRoute]:
        return [GatewayRoute(BASE_URL, "the notebook hub", ("components", self.name))]

    def risks(self, component: Component, env: Environment) -> list[TakenRisk]:
        s = component.settings
        if not component.installed:
            return []
        if s.auth_type == "dummy":
            return [TakenRisk("hub-dummy-login", ("components", self.name, "auth", "type"))]
        if s.allow_all:
            return [TakenRisk("hub-open-login", ("components", self.name, "auth", "allowAll"))]
        return []

    def install(self, component: Component, ctx: RenderContext) -> list[Obj]:
        return install(component, self.release(component.version), ctx)

    def workloads(self, ctx: RenderContext) -> list[Obj]:
        return notebook_objects(ctx.component(self.name), ctx)

    def accelerator_additions(self, klass: AcceleratorClass) -> dict[str, Any]:
        return notebook_accelerator_patch(klass)


PACKAGE = JupyterHub()
