"""The platform's components, one package each (see package.py for what a package owns).

    argo_workflows/     pipelines        seldon_core/    serving
    training_operator/  training         ambassador/     the gateway
    jupyterhub/         notebooks

Shared by all: package.py (the protocol), crd.py (building CRDs), pods.py (workload pod pieces).
"""

from __future__ import annotations

from kfgen.components import ambassador, argo_workflows, jupyterhub, seldon_core, training_operator
from kfgen.components.package import ComponentPackage

PACKAGES: dict[str, ComponentPackage] = {p.name: p for p in (
    argo_workflows.PACKAGE, training_operator.PACKAGE, seldon_core.PACKAGE, ambassador.PACKAGE, jupyterhub.PACKAGE)}
COMPONENTS = tuple(PACKAGES)  # in render order
RUNS_ON = {p.runs: p.name for p in PACKAGES.values() if p.runs}  # workload kind -> the component that runs it


def package(name: str) -> ComponentPackage:
    return PACKAGES[name]
