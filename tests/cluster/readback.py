"""Compare what was sent with what the API server stored.

Every field sent must come back with the same value (nothing pruned, nothing rewritten). A field the
server adds is a difference too, unless it is server-managed metadata, `status`, or on the
allow-list of documented defaults below, each with the reason it is a default.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any, Iterator

# Metadata the API server or a controller manages (never part of what Argo CD sends).
SERVER_METADATA = {"uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink"}

POD = "spec.template.spec"  # a workload's pod template spec
CONTAINERS = (f"{POD}.containers.*", f"{POD}.initContainers.*")

# (kind, dotted path with * for any list index or map key): added by the server's defaulting.
# The reasons cite the defaulting functions of Kubernetes 1.31 (pkg/apis/<group>/v1/defaults.go,
# SetDefaults_<Type>) and of apiextensions for CRDs.
DEFAULTS: list[tuple[str, str, str]] = [
    # Namespaces: the NamespaceLifecycle label and the kubernetes finalizer.
    ("Namespace", "metadata.labels.kubernetes.io/metadata.name", "set to the name by the API server (NamespaceDefaultLabelName)"),
    ("Namespace", "spec.finalizers", "core/v1 SetDefaults_NamespaceSpec: [kubernetes]"),
    # Pod templates (core/v1 SetDefaults_PodSpec, SetDefaults_Container, probes, volumes).
    ("*", f"{POD}.dnsPolicy", "SetDefaults_PodSpec: ClusterFirst"),
    ("*", f"{POD}.restartPolicy", "SetDefaults_PodSpec: Always (Deployment), the Job keeps what it is sent"),
    ("*", f"{POD}.schedulerName", "SetDefaults_PodSpec: default-scheduler"),
    ("*", f"{POD}.terminationGracePeriodSeconds", "SetDefaults_PodSpec: 30"),
    ("*", f"{POD}.securityContext", "SetDefaults_PodSpec: an empty PodSecurityContext"),
    ("*", f"{POD}.enableServiceLinks", "SetDefaults_PodSpec: true"),
    ("*", f"{POD}.serviceAccount", "SetDefaults_PodSpec: the deprecated alias, copied from serviceAccountName"),
    ("*", "spec.template.metadata.creationTimestamp", "the zero time of an ObjectMeta, serialized as null by the server"),
    ("PersistentVolumeClaim", "metadata.finalizers", "StorageObjectInUseProtection admission: kubernetes.io/pvc-protection"),
    *[("*", f"{c}.{leaf}", reason) for c in CONTAINERS for leaf, reason in [
        ("terminationMessagePath", "SetDefaults_Container: /dev/termination-log"),
        ("terminationMessagePolicy", "SetDefaults_Container: File"),
        ("imagePullPolicy", "SetDefaults_Container: IfNotPresent for a tagged image"),
        ("ports.*.protocol", "SetDefaults_ContainerPort: TCP"),
        ("env.*.valueFrom.fieldRef.apiVersion", "SetDefaults_ObjectFieldSelector: v1"),
        ("*Probe.timeoutSeconds", "SetDefaults_Probe: 1"),
        ("*Probe.periodSeconds", "SetDefaults_Probe: 10"),
        ("*Probe.successThreshold", "SetDefaults_Probe: 1"),
        ("*Probe.failureThreshold", "SetDefaults_Probe: 3"),
        ("*Probe.httpGet.scheme", "SetDefaults_HTTPGetAction: HTTP"),
    ]],
    ("*", f"{POD}.volumes.*.configMap.defaultMode", "SetDefaults_ConfigMapVolumeSource: 0644"),
    ("*", f"{POD}.volumes.*.secret.defaultMode", "SetDefaults_SecretVolumeSource: 0644"),
    ("*", f"{POD}.volumes.*.projected.defaultMode", "SetDefaults_ProjectedVolumeSource: 0644"),
    # apps/v1 SetDefaults_Deployment.
    ("Deployment", "spec.strategy.type", "SetDefaults_Deployment: RollingUpdate"),
    ("Deployment", "spec.strategy.rollingUpdate.maxSurge", "SetDefaults_Deployment: 25%"),
    ("Deployment", "spec.strategy.rollingUpdate.maxUnavailable", "SetDefaults_Deployment: 25%"),
    ("Deployment", "spec.revisionHistoryLimit", "SetDefaults_Deployment: 10"),
    ("Deployment", "spec.progressDeadlineSeconds", "SetDefaults_Deployment: 600"),
    ("Deployment", "metadata.annotations.deployment.kubernetes.io/revision", "written by the deployment controller"),
    # batch/v1 SetDefaults_Job (and the selector and labels the Job's admission adds).
    ("Job", "spec.backoffLimit", "SetDefaults_Job: 6"),
    ("Job", "spec.completions", "SetDefaults_Job: 1 when parallelism is unset"),
    ("Job", "spec.parallelism", "SetDefaults_Job: 1"),
    ("Job", "spec.completionMode", "SetDefaults_Job: NonIndexed"),
    ("Job", "spec.suspend", "SetDefaults_Job: false"),
    ("Job", "spec.manualSelector", "the Job strategy's PrepareForCreate: false when it generates the selector"),
    ("Job", "spec.podReplacementPolicy", "SetDefaults_Job: TerminatingOrFailed (JobPodReplacementPolicy, beta in 1.29+)"),
    ("Job", "spec.selector.matchLabels.*", "the Job's generated selector (batch.kubernetes.io/controller-uid)"),
    ("Job", "spec.template.metadata.labels.*", "the Job's generated pod labels (controller-uid, job-name)"),
    # Services (core/v1 SetDefaults_Service and the IP allocator).
    ("Service", "spec.clusterIP", "allocated by the API server"),
    ("Service", "spec.clusterIPs", "allocated by the API server"),
    ("Service", "spec.ipFamilies", "set by the API server from the cluster's families"),
    ("Service", "spec.ipFamilyPolicy", "SetDefaults_Service: SingleStack"),
    ("Service", "spec.sessionAffinity", "SetDefaults_Service: None"),
    ("Service", "spec.type", "SetDefaults_Service: ClusterIP"),
    ("Service", "spec.internalTrafficPolicy", "SetDefaults_Service: Cluster"),
    ("Service", "spec.externalTrafficPolicy", "SetDefaults_Service: Cluster for a LoadBalancer"),
    ("Service", "spec.allocateLoadBalancerNodePorts", "SetDefaults_Service: true for a LoadBalancer"),
    ("Service", "spec.ports.*.protocol", "SetDefaults_ServicePort: TCP"),
    ("Service", "spec.ports.*.targetPort", "SetDefaults_ServicePort: the port"),
    ("Service", "spec.ports.*.nodePort", "allocated by the API server for a LoadBalancer"),
    ("Service", "spec.healthCheckNodePort", "allocated for a Local LoadBalancer"),
    # PersistentVolumeClaims (core/v1 SetDefaults_PersistentVolumeClaimSpec).
    ("PersistentVolumeClaim", "spec.volumeMode", "SetDefaults_PersistentVolumeClaimSpec: Filesystem"),
    # Admission webhooks (admissionregistration/v1 SetDefaults_ValidatingWebhook, _Rule, _ServiceReference).
    *[(kind, f"webhooks.*.{leaf}", reason) for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")
      for leaf, reason in [
          ("failurePolicy", "SetDefaults_*Webhook: Fail"),
          ("matchPolicy", "SetDefaults_*Webhook: Equivalent"),
          ("namespaceSelector", "SetDefaults_*Webhook: {}"),
          ("objectSelector", "SetDefaults_*Webhook: {}"),
          ("timeoutSeconds", "SetDefaults_*Webhook: 10"),
          ("reinvocationPolicy", "SetDefaults_MutatingWebhook: Never"),
          ("rules.*.scope", "SetDefaults_Rule: *"),
          ("clientConfig.service.port", "SetDefaults_ServiceReference: 443"),
      ]],
    # CRDs (apiextensions/v1 SetDefaults_CustomResourceDefinitionSpec).
    ("CustomResourceDefinition", "spec.conversion.strategy", "SetDefaults_CustomResourceConversion: None"),
    ("CustomResourceDefinition", "spec.names.singular", "SetDefaults_CustomResourceDefinitionSpec: the lower-cased kind"),
    ("CustomResourceDefinition", "spec.names.listKind", "SetDefaults_CustomResourceDefinitionSpec: <kind>List"),
    # Custom resources: defaults in the CRDs' schemas (kfgen's, as upstream's).
    ("TFJob", "spec.runPolicy.suspend", "the TFJob CRD's schema default: false (upstream's v1.8.1 CRD has it)"),
    # PriorityClasses (scheduling/v1 SetDefaults_PriorityClass).
    ("PriorityClass", "preemptionPolicy", "SetDefaults_PriorityClass: PreemptLowerPriority"),
    # StorageClasses (storage/v1 SetDefaults_StorageClass).
    ("StorageClass", "reclaimPolicy", "SetDefaults_StorageClass: Delete"),
    ("StorageClass", "volumeBindingMode", "SetDefaults_StorageClass: Immediate"),
]


def leaves(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(path, leaf) pairs; an empty map or list is a leaf of its own."""
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from leaves(item, (*path, str(key)))
    elif isinstance(value, list) and value:
        for i, item in enumerate(value):
            yield from leaves(item, (*path, str(i)))
    else:
        yield path, value


def lookup(value: Any, path: tuple[str, ...]) -> tuple[bool, Any]:
    for key in path:
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return False, None
    return True, value


def _matches(pattern: str, path: tuple[str, ...]) -> bool:
    """A dotted pattern against a path; `*` matches one element (an index, a map key, part of a name)."""
    parts = pattern.split(".")
    # Annotation and label keys contain dots: the pattern's tail after labels/annotations is one key.
    for anchor in ("labels", "annotations"):
        if anchor in parts[:-1]:
            i = parts.index(anchor)
            parts = parts[: i + 1] + [".".join(parts[i + 1:])]
            break
    if len(parts) > len(path):
        return False
    # A default may be a whole subtree (e.g. securityContext: {}), so the pattern matches a prefix.
    return all(fnmatchcase(p, q) for q, p in zip(parts, path[: len(parts)]))


def is_default(kind: str, path: tuple[str, ...]) -> bool:
    return any((k == "*" or k == kind) and _matches(pattern, path) for k, pattern, _ in DEFAULTS)


def differences(sent: dict, stored: dict) -> list[str]:
    """Every field sent that did not come back as sent, and every field added that is no default."""
    out = []
    for path, value in leaves(sent):
        found, got = lookup(stored, path)
        if not found:
            out.append(f"{'.'.join(path)}: sent {value!r}, not stored (pruned or dropped)")
        elif got != value:
            out.append(f"{'.'.join(path)}: sent {value!r}, stored {got!r}")
    for path, value in leaves(stored):
        if path[:1] == ("status",) or (path[:1] == ("metadata",) and len(path) > 1 and path[1] in SERVER_METADATA):
            continue
        if lookup(sent, path)[0] or is_default(stored["kind"], path):
            continue
        # A field under a list item the sender wrote, or a map entry, is added by the server.
        out.append(f"{'.'.join(path)}: not sent, stored {value!r}")
    return out
