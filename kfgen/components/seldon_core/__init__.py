"""Seldon Core v1: the operator (1.17.1, Apache-2.0, by default; 1.18.2 under the Business Source
License) and the models of spec.workloads.serving as SeldonDeployments with their gateway routes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from kfgen.accelerators import image_variant
from kfgen.components.package import AcceleratorTarget, ComponentPackage, Fail, GatewayRoute, PodSecurityNeed, Release, with_defaults
from kfgen.components.seldon_core.deviations import DEVIATIONS, WORKLOAD_POD_SECURITY
from kfgen.components.seldon_core.install import install
from kfgen.components.seldon_core.models import MAX_PREDICTORS, predictor_label, serving_objects
from kfgen.components.seldon_core.servers import PREDICTOR_SERVERS_KEY, server_image
from kfgen.context import RenderContext
from kfgen.model import Component, Environment
from kfgen.objects import Obj


def _minor(version: str) -> tuple[int, int]:
    major, minor, *_ = version.split(".")
    return int(major), int(minor)


def _tensorflow_of(image: str) -> tuple[int, int] | None:
    """The TensorFlow version of an official TensorFlow image (tensorflow/tensorflow:2.18.0[-gpu]), else None."""
    repository, _, tag = image.rpartition(":")
    match = re.match(r"^(\d+)\.(\d+)\.\d+", tag)
    return (int(match[1]), int(match[2])) if match and repository.endswith("tensorflow/tensorflow") else None


def _release(version: str) -> Release:
    return Release(version, {"operator": f"docker.io/seldonio/seldon-core-operator:{version}",
                             "executor": f"docker.io/seldonio/seldon-core-executor:{version}",
                             "storage_initializer": f"docker.io/seldonio/rclone-storage-initializer:{version}"},
                   upstream=f"seldon-core/v{version}/chart")


@dataclass(frozen=True)
class SeldonSettings:
    tf_serving_version: str


class SeldonCore(ComponentPackage):
    name = "seldon-core"
    title = "Seldon Core v1"
    releases = tuple(_release(v) for v in ("1.17.1", "1.18.2"))
    namespace = "seldon-system"
    deviations = DEVIATIONS
    runs = "serving"
    workload_kinds = ("SeldonDeployment",)  # custom resources of workloads: synced one wave after the operators
    folder = Path(__file__).parent

    def settings(self, data: Mapping[str, Any]) -> SeldonSettings:
        return SeldonSettings(with_defaults(data, self.settings_schema)["tfServingVersion"])

    def check_environment(self, component: Component, env: Environment, fail: Fail) -> None:
        """A TensorFlow Serving older than the TensorFlow that exported a model cannot load it: refused where
        both are known (a training job of tensorflow/tensorflow:<version> writes the model a server reads)."""
        serving = _minor(component.settings.tf_serving_version)
        for model in env.workloads.enabled("serving"):
            if model.server != "TENSORFLOW_SERVER":
                continue
            for version in model.predictors():
                for job in env.workloads.enabled("training"):
                    trained = _tensorflow_of(job.image)
                    if job.model_dir and job.model_dir == version.model_uri and trained and trained > serving:
                        fail(("components", self.name, "tfServingVersion"),
                             f"TensorFlow Serving {component.settings.tf_serving_version} cannot load what training job {job.name!r} "
                             f"exports with TensorFlow {'.'.join(map(str, trained))} (model {model.name!r}, environment {env.name!r}); "
                             f"set tfServingVersion to {trained[0]}.{trained[1]}.0 or newer")

    def install(self, component: Component, ctx: RenderContext) -> list[Obj]:
        return install(component, self.release(component.version), ctx)

    def workloads(self, ctx: RenderContext) -> list[Obj]:
        return serving_objects(ctx)

    def workload_pod_security(self, ctx: RenderContext) -> PodSecurityNeed | None:
        """The executor and model initializer the manager adds to each model's pods need `baseline` (see deviations.py)."""
        return PodSecurityNeed("baseline", WORKLOAD_POD_SECURITY) if ctx.workloads.enabled("serving") else None

    def routes(self, component: Component, env: Environment) -> list[GatewayRoute]:
        return [GatewayRoute(m.route.prefix, f"model {m.name}", ("workloads", "serving", m.name, "route", "prefix"))
                for m in env.workloads.enabled("serving") if m.route.enabled]

    def runtime_images(self, component: Component, ctx: RenderContext) -> set[str]:
        """The prepackaged servers the models use (the operator adds their containers)."""
        found = set()
        for model in ctx.workloads.enabled("serving"):
            for version in model.predictors():
                if model.server != "CUSTOM" and not version.image:
                    image = server_image(component.version, component.settings.tf_serving_version, model.server, model.protocol)
                    found.add(component.mirror.rewrite(image_variant(image, ctx.accelerator(model.accelerator))))
        return found

    def image_catalogs(self) -> tuple[str, ...]:
        return (PREDICTOR_SERVERS_KEY,)

    def accelerator_targets(self) -> tuple[AcceleratorTarget, ...]:
        # the first predictor asks with kfgen.io/accelerator, the others (a model's versions) with their own label
        targets = []
        for index in range(MAX_PREDICTORS):
            spec = f"/spec/predictors/{index}/componentSpecs/0/spec"
            targets.append(AcceleratorTarget("machinelearning.seldon.io", "v1", "SeldonDeployment", predictor_label(index), spec,
                                             f"{spec}/containers/0", f"seldondeployment{'' if index == 0 else f'-{index}'}.yaml"))
        return tuple(targets)


PACKAGE = SeldonCore()
