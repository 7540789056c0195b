"""Deviations from upstream that every component's install shares, each stated once with its reason."""

from __future__ import annotations

from kfgen.components.package import Deviation

POD_SECURITY = ("kfgen renders the component's Namespace, with Pod Security admission enforcing `restricted`, so the "
                "namespace refuses pods that break the policy (upstream's install leaves the Namespace to you)")
RESTRICTED = ("the `restricted` Pod Security level the Namespace enforces: runAsNonRoot, seccompProfile RuntimeDefault, "
              "no privilege escalation, every capability dropped, a read-only root filesystem where the image allows it")
RUN_AS = ("an explicit non-root uid and gid (checkov CKV_K8S_40, a uid above 10000, unless the image needs its own user): "
          "a restricted namespace also refuses an image whose user is root")
LINUX = "the images are Linux images: pods are kept off Windows nodes of mixed clusters (nodeSelector kubernetes.io/os: linux)"
CRD_SCHEMA = ("kfgen's CRDs carry their own structural schemas, covering the fields kfgen renders and preserving unknown fields "
              "below pod templates (smaller than upstream's generated ones; `kfgen lint --crds` checks against upstream's). "
              "Names, versions, scope, subresources and printer columns are upstream's")

CHECKOV_PROBES = "liveness and readiness probes on every long-running container (checkov CKV_K8S_8 and CKV_K8S_9)"
HELM_LABELS = ("kfgen's own labels (app.kubernetes.io/managed-by: kfgen, app.kubernetes.io/part-of: <stack>, kfgen.io/component, "
               "added by each base's kustomization) stand for the chart's bookkeeping labels (its release, chart and version)")


def hardening(*workloads: tuple[str, str], node_selector: bool = True) -> tuple[Deviation, ...]:
    """The security contexts (and, where upstream has none, the node selector) kfgen sets on the pods of
    each (kind, name) workload."""
    out = []
    for kind, name in workloads:
        out += [
            Deviation(kind, name, "spec.template.spec.securityContext", RESTRICTED + "; " + RUN_AS),
            Deviation(kind, name, "spec.template.spec.containers[*].securityContext", RESTRICTED),
        ]
        if node_selector:
            out.append(Deviation(kind, name, "spec.template.spec.nodeSelector", LINUX))
    return tuple(out)


def namespace(name: str) -> Deviation:
    return Deviation("Namespace", name, "*", POD_SECURITY)


def crd_schemas(group: str) -> Deviation:
    return Deviation("CustomResourceDefinition", f"*.{group}", "spec.versions[*].schema", CRD_SCHEMA)
