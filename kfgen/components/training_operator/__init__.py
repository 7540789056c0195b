"""The Kubeflow training operator (TFJob only) with its validating webhook, and the training jobs of
spec.workloads.training as TFJobs."""

from __future__ import annotations

from pathlib import Path

from kfgen.components.package import AcceleratorTarget, ComponentPackage, Release
from kfgen.components.training_operator.deviations import DEVIATIONS
from kfgen.components.training_operator.install import install
from kfgen.components.training_operator.tfjobs import TFJOB_ACCELERATED, replica_label, training_objects
from kfgen.context import RenderContext
from kfgen.model import Component
from kfgen.objects import Obj

# The operator's image tags are commit-named; these are the ones its release manifests pin.
_IMAGES = {"v1.8.1": "docker.io/kubeflow/training-operator:v1-04f9f13", "v1.8.0": "docker.io/kubeflow/training-operator:v1-9e52eb7"}


class TrainingOperator(ComponentPackage):
    name = "training-operator"
    title = "Kubeflow training operator"
    releases = tuple(Release(v, {"operator": image}, upstream=f"training-operator/{v}/standalone.yaml") for v, image in _IMAGES.items())
    namespace = "kubeflow"
    runs = "training"
    deviations = DEVIATIONS
    workload_kinds = ("TFJob",)  # custom resources of workloads: synced one wave after the operators
    folder = Path(__file__).parent

    def install(self, component: Component, ctx: RenderContext) -> list[Obj]:
        return install(component, self.release(component.version), ctx)

    def workloads(self, ctx: RenderContext) -> list[Obj]:
        return training_objects(ctx)

    def accelerator_targets(self) -> tuple[AcceleratorTarget, ...]:
        # each replica type asks for its class with its own label; parameter servers never do
        return tuple(AcceleratorTarget("kubeflow.org", "v1", "TFJob", replica_label(t), f"/spec/tfReplicaSpecs/{t}/template/spec",
                                       f"/spec/tfReplicaSpecs/{t}/template/spec/containers/0", f"tfjob-{t.lower()}.yaml")
                     for t in TFJOB_ACCELERATED)


PACKAGE = TrainingOperator()
