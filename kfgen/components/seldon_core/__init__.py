"""Seldon Core v1: the operator (1.17.1, Apache-2.0, by default; 1.18.2 under the Business Source
License) and the models of spec.workloads.serving as SeldonDeployments with their gateway routes."""

from __future__ import annotations

from pathlib import Path

from kfgen.components.package import AcceleratorTarget, ComponentPackage, GatewayRoute, Release
from kfgen.components.seldon_core.deviations import DEVIATIONS
from kfgen.components.seldon_core.install import install
from kfgen.components.seldon_core.models import serving_objects
from kfgen.components.seldon_core.servers import PREDICTOR_SERVERS_KEY, server_image
from kfgen.context import RenderContext
from kfgen.model import Component, Environment
from kfgen.objects import Obj
from kfgen.vocabulary import ACCELERATOR_LABEL


def _release(version: str) -> Release:
    return Release(version, {"operator": f"docker.io/seldonio/seldon-core-operator:{version}",
                             "executor": f"docker.io/seldonio/seldon-core-executor:{version}",
                             "storage_initializer": f"docker.io/seldonio/rclone-storage-initializer:{version}"},
                   upstream=f"seldon-core/v{version}/chart")


class SeldonCore(ComponentPackage):
    name = "seldon-core"
    title = "Seldon Core v1"
    releases = tuple(_release(v) for v in ("1.17.1", "1.18.2"))
    namespace = "seldon-system"
    deviations = DEVIATIONS
    runs = "serving"
    workload_kinds = ("SeldonDeployment",)  # custom resources of workloads: synced one wave after the operators
    folder = Path(__file__).parent

    def install(self, component: Component, ctx: RenderContext) -> list[Obj]:
        return install(component, self.release(component.version), ctx)

    def workloads(self, ctx: RenderContext) -> list[Obj]:
        return serving_objects(ctx)

    def routes(self, component: Component, env: Environment) -> list[GatewayRoute]:
        return [GatewayRoute(m.route.prefix, f"model {m.name}", ("workloads", "serving", m.name, "route", "prefix"))
                for m in env.workloads.enabled("serving") if m.route.enabled]

    def runtime_images(self, component: Component, ctx: RenderContext) -> set[str]:
        """The prepackaged servers the models use (the operator adds their containers)."""
        found = set()
        for model in ctx.workloads.enabled("serving"):
            if model.server != "CUSTOM" and not model.image:
                found.add(component.mirror.rewrite(server_image(component.version, model.server, model.protocol)))
        return found

    def image_catalogs(self) -> tuple[str, ...]:
        return (PREDICTOR_SERVERS_KEY,)

    def accelerator_targets(self) -> tuple[AcceleratorTarget, ...]:
        spec = "/spec/predictors/0/componentSpecs/0/spec"
        return (AcceleratorTarget("machinelearning.seldon.io", "v1", "SeldonDeployment", ACCELERATOR_LABEL, spec,
                                  f"{spec}/containers/0", "seldondeployment.yaml"),)


PACKAGE = SeldonCore()
