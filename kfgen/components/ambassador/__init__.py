"""Emissary-ingress (Ambassador) 3.10: the API gateway in front of models and notebooks. Its routes
(Mappings) are rendered next to the workloads they route to (see mappings.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from kfgen.components.ambassador.deviations import DEVIATIONS
from kfgen.components.ambassador.install import install
from kfgen.components.package import ComponentPackage, Fail, Release, with_defaults
from kfgen.context import RenderContext
from kfgen.model import Component, Environment, frozen
from kfgen.objects import Obj
from kfgen.risks import TakenRisk


@dataclass(frozen=True)
class GatewaySettings:
    hostname: str | None
    tls_secret: str | None
    auth: Mapping[str, Any] | None  # the external auth service (an AuthService), as written with defaults


class Ambassador(ComponentPackage):
    name = "ambassador"
    title = "Emissary-ingress (Ambassador)"
    releases = (Release("3.10.0", {"gateway": "docker.io/emissaryingress/emissary:3.10.0"}, upstream="emissary/3.10.0"),)
    namespace = "emissary"
    deviations = DEVIATIONS
    app_wave = 0  # others' routes use its CRDs
    workload_kinds = ("Mapping",)  # custom resources of workloads: synced one wave after the operators
    folder = Path(__file__).parent

    def settings(self, data: Mapping[str, Any]) -> GatewaySettings:
        values = with_defaults(data, self.settings_schema)
        return GatewaySettings(values.get("hostname"), values.get("tlsSecret"), frozen(values["auth"]) if "auth" in values else None)

    def check(self, component: Component, fail: Fail) -> None:
        if component.installed and not component.settings.hostname:
            fail((), "ambassador needs a hostname (spec.components.ambassador.hostname) for its Host and routes")

    def risks(self, component: Component, env: Environment) -> list[TakenRisk]:
        if not component.installed or env.exposure != "external":
            return []
        exposure = ("environments", env.name, "exposure")
        taken = [] if component.settings.tls_secret else [TakenRisk("plain-http", exposure)]
        routed = [m for m in env.workloads.enabled("serving") if m.route.enabled] if env.components["seldon-core"].enabled else []
        if routed and not component.settings.auth:
            taken.append(TakenRisk("public-routes", exposure))
        return taken

    def install(self, component: Component, ctx: RenderContext) -> list[Obj]:
        return install(component, self.release(component.version), ctx)


PACKAGE = Ambassador()
