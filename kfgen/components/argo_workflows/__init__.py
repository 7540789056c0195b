"""Argo Workflows (pipelines): the workflow controller and the Argo server, cluster install, with the
pipelines of spec.workloads.pipelines as WorkflowTemplates (and CronWorkflows)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from kfgen.components.argo_workflows.deviations import DEVIATIONS
from kfgen.components.argo_workflows.install import install
from kfgen.components.argo_workflows.pipelines import pipeline_objects
from kfgen.components.package import AcceleratorTarget, ComponentPackage, Release, with_defaults
from kfgen.context import RenderContext
from kfgen.model import Component, Environment
from kfgen.objects import Obj
from kfgen.risks import TakenRisk
from kfgen.vocabulary import ACCELERATOR_LABEL


@dataclass(frozen=True)
class ArgoSettings:
    server_enabled: bool
    auth_modes: tuple[str, ...]


def _release(version: str) -> Release:
    return Release(version, {"controller": f"quay.io/argoproj/workflow-controller:{version}",
                             "server": f"quay.io/argoproj/argocli:{version}",
                             "executor": f"quay.io/argoproj/argoexec:{version}"},
                   upstream=f"argo-workflows/{version}/cluster-install.yaml")


class ArgoWorkflows(ComponentPackage):
    name = "argo-workflows"
    title = "Argo Workflows"
    releases = tuple(_release(v) for v in ("v3.6.19", "v3.7.18", "v3.6.10", "v3.5.15"))
    namespace = "argo"
    runs = "pipelines"
    deviations = DEVIATIONS
    workload_kinds = ("WorkflowTemplate", "CronWorkflow")  # custom resources of workloads: synced one wave after the operators
    folder = Path(__file__).parent

    def settings(self, data: Mapping[str, Any]) -> ArgoSettings:
        server = with_defaults(data, self.settings_schema)["server"]
        return ArgoSettings(server["enabled"], tuple(server["authModes"]))

    def risks(self, component: Component, env: Environment) -> list[TakenRisk]:
        s = component.settings
        if component.installed and s.server_enabled and "server" in s.auth_modes:
            return [TakenRisk("argo-server-auth-mode-server", ("components", self.name, "server", "authModes"))]
        return []

    def install(self, component: Component, ctx: RenderContext) -> list[Obj]:
        return install(component, self.release(component.version), ctx)

    def workloads(self, ctx: RenderContext) -> list[Obj]:
        return pipeline_objects(ctx)

    def accelerator_targets(self) -> tuple[AcceleratorTarget, ...]:
        # an accelerated step is its own WorkflowTemplate whose one template is the step
        return (AcceleratorTarget("argoproj.io", "v1alpha1", "WorkflowTemplate", ACCELERATOR_LABEL, "/spec/templates/0",
                                  "/spec/templates/0/container", "workflowtemplate.yaml"),)


PACKAGE = ArgoWorkflows()
