"""What rendering sees: the stack's components and workloads, and optionally one environment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from kfgen.model import AcceleratorClass, Component, Environment, Waiver, Workloads
from kfgen.vocabulary import RISK_ANNOTATION_PREFIX


@dataclass(frozen=True)
class RenderContext:
    """The base context (no environment): nothing cloud- or environment-specific is rendered in it."""

    stack: str
    components: Mapping[str, Component]
    workloads: Workloads
    env: Environment | None = None
    waivers: tuple[Waiver, ...] = ()

    def component(self, name: str) -> Component:
        return self.components[name]

    def accelerator(self, name: str | None) -> AcceleratorClass | None:
        return self.env.accelerator(name) if self.env and name else None

    def identity_annotations(self, role: str) -> dict[str, str]:
        """The cloud identity annotation of a workload ServiceAccount in this environment."""
        env = self.env
        if env is None or not env.cloud.identity_annotation:
            return {}
        identity = env.identity_of(role)
        return {env.cloud.identity_annotation: identity} if identity else {}

    def risk_annotations(self, *risks: str) -> dict[str, str]:
        """`risks.kfgen.io/<risk>: <reason>` for those of `risks` this environment takes and accepts."""
        accepted = self.env.accepted_risks if self.env else {}
        return {f"{RISK_ANNOTATION_PREFIX}{risk}": accepted[risk] for risk in risks if risk in accepted}

    def identity_pod_labels(self, role: str) -> dict[str, str]:
        """Labels pods need to use their identity (AKS), only where an identity is set."""
        if self.env is None or not self.identity_annotations(role):
            return {}
        return dict(self.env.cloud.identity_pod_labels)

    def shared_memory(self, accelerator: str | None) -> bool:
        """Accelerated training pods get a memory-backed /dev/shm. Without an environment the class
        is just a name, so the base assumes it is an accelerator that wants one."""
        if accelerator is None:
            return False
        if self.env is None:
            return True
        klass = self.env.accelerator(accelerator)
        return bool(klass and klass.profile.shared_memory)
