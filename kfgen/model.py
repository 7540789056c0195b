"""The validated stack: frozen dataclasses, defaults applied. Nothing downstream sees raw YAML."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from kfgen.mirror import Mirror

REPLICA_TYPES = ("Chief", "Worker", "PS", "Evaluator")
PERSONAL_ROLES = ("notebooks", "argo-server")  # identities people use interactively: never the default one


def frozen(value: Any) -> Any:
    """A deep read-only copy of plain data (dicts become mappingproxies, lists tuples)."""
    if isinstance(value, dict):
        return MappingProxyType({k: frozen(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(frozen(v) for v in value)
    return value


def thawed(value: Any) -> Any:
    """Plain dicts and lists again, for building manifests."""
    if isinstance(value, Mapping):
        return {k: thawed(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thawed(v) for v in value]
    return value


@dataclass(frozen=True)
class Resources:
    requests: Mapping[str, str]
    limits: Mapping[str, str]

    def as_dict(self) -> dict:
        return {"limits": dict(sorted(self.limits.items())), "requests": dict(sorted(self.requests.items()))}


@dataclass(frozen=True)
class Patch:
    path: str  # relative to the stack file, as written
    target: Mapping[str, str] | None
    written_at: tuple = ()  # its entry's path in the stack document (where a patch kustomize cannot apply is reported)


@dataclass(frozen=True)
class Component:
    name: str
    enabled: bool
    install: str  # kfgen | external
    version: str
    namespace: str
    replicas: int | None
    resources: Resources | None  # user's override, merged over the catalog's defaults
    mirror: Mirror  # where its own images are pulled from (its imageRegistry, else the stack's spec.images)
    extra_resources: tuple[str, ...]
    patches: tuple[Patch, ...]
    settings: Any = None  # the component package's own typed settings (kfgen.components.<name>)

    @property
    def installed(self) -> bool:
        return self.enabled and self.install == "kfgen"


@dataclass(frozen=True)
class RunPolicy:
    clean_pod_policy: str
    ttl_seconds_after_finished: int | None
    backoff_limit: int | None
    active_deadline_seconds: int | None


@dataclass(frozen=True)
class TrainingJob:
    name: str
    enabled: bool
    image: str
    command: tuple[str, ...]
    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    replicas: tuple[tuple[str, int], ...]  # (replica type, count), in REPLICA_TYPES order
    resources: Resources
    accelerator: str | None
    port: int
    model_dir: str | None
    image_variant: bool
    run_policy: RunPolicy

    def accelerator_of(self, replica_type: str) -> str | None:
        """PS replicas never get the accelerator."""
        return None if replica_type == "PS" else self.accelerator


@dataclass(frozen=True)
class Route:
    enabled: bool
    prefix: str
    timeout_ms: int


@dataclass(frozen=True)
class Autoscaling:
    min_replicas: int
    max_replicas: int
    cpu_utilization: int | None  # percent of the CPU request
    metric: tuple[str, str] | None  # (custom metric name, target average value per pod)


@dataclass(frozen=True)
class ModelVersion:
    """One predictor of a served model: its own store, image and replicas, and its share of the traffic."""

    name: str
    model_uri: str | None
    image: str | None
    replicas: int
    traffic: int
    shadow: bool


@dataclass(frozen=True)
class ServedModel:
    name: str
    enabled: bool
    server: str
    model_uri: str | None
    credentials_secret: str | None
    image: str | None
    protocol: str
    replicas: int
    resources: Resources
    accelerator: str | None
    env: tuple[tuple[str, str], ...]
    route: Route
    autoscaling: Autoscaling | None = None
    versions: tuple[ModelVersion, ...] = ()  # empty: one predictor, `default`, with the model's settings

    def predictors(self) -> tuple[ModelVersion, ...]:
        """The model's predictors in a stable order: the versions that take traffic by name, the shadow last."""
        if not self.versions:
            return (ModelVersion("default", self.model_uri, self.image, self.replicas, 100, False),)
        return tuple(sorted(self.versions, key=lambda v: (v.shadow, v.name)))


@dataclass(frozen=True)
class Step:
    name: str
    image: str
    command: tuple[str, ...]
    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    inputs: tuple[str, ...]
    resources: Resources
    accelerator: str | None


@dataclass(frozen=True)
class Pipeline:
    name: str
    enabled: bool
    schedule: str | None
    timezone: str
    parameters: tuple[tuple[str, str], ...]
    steps: tuple[Step, ...]  # in dependency order, ties by name


@dataclass(frozen=True)
class NotebookProfile:
    name: str
    enabled: bool
    display_name: str
    description: str
    image: str
    resources: Resources
    accelerator: str | None
    default: bool
    max_age: int | None = None  # seconds a server may run (its pod's activeDeadlineSeconds)


@dataclass(frozen=True)
class Workloads:
    namespace: str
    training: tuple[TrainingJob, ...]
    serving: tuple[ServedModel, ...]
    pipelines: tuple[Pipeline, ...]
    notebooks: tuple[NotebookProfile, ...]

    def enabled(self, kind: str) -> tuple:
        return tuple(w for w in getattr(self, kind) if w.enabled)

    def accelerator_uses(self) -> list[tuple[str, str, str | None]]:
        """(kind, workload name, accelerator class) for every enabled workload part."""
        uses: list[tuple[str, str, str | None]] = []
        for job in self.enabled("training"):
            uses.append(("training", job.name, job.accelerator))
        for model in self.enabled("serving"):
            uses.append(("serving", model.name, model.accelerator))
        for pipeline in self.enabled("pipelines"):
            uses.extend(("pipelines", f"{pipeline.name}.{s.name}", s.accelerator) for s in pipeline.steps)
        for profile in self.enabled("notebooks"):
            uses.append(("notebooks", profile.name, profile.accelerator))
        return uses


@dataclass(frozen=True)
class Placement:
    max_per_node: int | None
    node_selector: Mapping[str, str]
    instance_types: tuple[str, ...]
    tolerations: tuple[Mapping[str, str], ...]


@dataclass(frozen=True)
class AcceleratorProfile:
    name: str
    description: str
    resource: str | None
    shared_memory: bool
    tolerations: tuple[Mapping[str, str], ...]
    image_variants: tuple[tuple[str, str], ...]  # (repository, tag suffix)
    mig_profiles: tuple[str, ...]
    tpu: Mapping[str, Any] | None
    placement: Mapping[str, Placement]  # by placement key (kfgen.accelerators.placement_key)
    source: str  # file it came from


@dataclass(frozen=True)
class CloudProfile:
    name: str
    description: str
    scheme: str
    storage_class: str | None
    storage_classes: tuple[Mapping[str, Any], ...]
    identity_annotation: str | None
    identity_pod_labels: Mapping[str, str]
    identity_format: str | None
    identity_example: str | None
    load_balancer: Mapping[str, Mapping[str, str]]
    service_type: str
    artifacts: str | None
    placements: Mapping[str, Placement]  # this cloud's own placement per accelerator profile
    source: str
    node_selection: str | None = None  # the default strategy of its environments (None: its scheme's)


@dataclass(frozen=True)
class AcceleratorClass:
    """An environment's accelerator class, resolved against its profile and cloud."""

    name: str
    profile: AcceleratorProfile
    resource: str | None  # extended resource name actually requested (MIG may change it)
    count: int  # per pod
    hosts: int  # TPU slices: pods that make one slice; 1 otherwise
    node_selector: Mapping[str, str]
    instance_types: tuple[str, ...]
    tolerations: tuple[Mapping[str, str], ...]
    image_variants: tuple[tuple[str, str], ...]
    mig: str | None
    topology: str | None
    node_selection: str | None = None  # the strategy, when it is not the cloud's default (it names the Component)

    @property
    def slug(self) -> str:
        """Folder-safe, stable name of the Component that implements this class on a cloud."""
        parts = [self.name, self.profile.name]
        if self.node_selection:
            parts.append(self.node_selection)
        if self.count != 1:  # for TPUs: the chips per host, which the machine type decides
            parts.append(f"x{self.count}")
        if self.mig:
            parts.append(f"mig-{self.mig}")
        if self.topology:
            parts.append(self.topology)
        return "-".join(parts)


@dataclass(frozen=True)
class Artifacts:
    provider: str  # gcs | s3 | azure
    bucket: str
    key_prefix: str
    endpoint: str | None
    region: str | None
    insecure: bool
    credentials_secret: str | None


@dataclass(frozen=True)
class Sync:
    automated: bool  # False (the default): a person syncs this environment (a protected environment)
    prune: bool
    self_heal: bool
    source: str  # rendered | kustomize
    revision: str  # the git revision its Applications follow: gitops.targetRevision, or its own (e.g. env/prod)
    own_revision: bool = False  # the revision is the environment's own (written in sync.revision): promoted with kfgen promote


@dataclass(frozen=True)
class Environment:
    name: str
    cloud: CloudProfile
    destination: Mapping[str, str]
    exposure: str
    identity: Mapping[str, str]
    artifacts: Artifacts | None
    accelerators: tuple[AcceleratorClass, ...]
    sync: Sync
    components: Mapping[str, Component]  # effective, overrides applied
    workloads: Workloads  # effective, overrides applied
    accepted_risks: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))  # risk -> reason, of the risks it takes
    clusters: tuple[str, ...] = ()  # a fleet: the Argo CD cluster names it runs on (then `destination` is unused)

    @property
    def destinations(self) -> tuple[Mapping[str, str], ...]:
        """Every cluster this environment deploys to, as Argo CD destinations ({name} or {server})."""
        return tuple({"name": c} for c in self.clusters) if self.clusters else (self.destination,)

    def accelerator(self, name: str | None) -> AcceleratorClass | None:
        return next((a for a in self.accelerators if a.name == name), None)

    def identity_of(self, role: str) -> str | None:
        """The cloud identity of a role; `default` covers the batch workloads, never the roles where
        people act interactively (notebooks, the Argo server)."""
        if role in PERSONAL_ROLES:
            return self.identity.get(role)
        return self.identity.get(role) or self.identity.get("default")


@dataclass(frozen=True)
class ClusterResource:
    """A cluster-scoped object the stack's own manifests add, granted by name in the AppProject."""

    group: str
    kind: str
    name: str


@dataclass(frozen=True)
class GitOps:
    repo_url: str
    target_revision: str
    path: str  # relative to the stack file's folder
    argocd_namespace: str
    repo_path: str = ""  # the rendered tree's folder relative to the repository root: every Argo CD path starts here
    namespaces: tuple[str, ...] = ()  # spec.gitops.project.namespaces: more namespaces extraResources may write into
    cluster_resources: tuple[ClusterResource, ...] = ()  # spec.gitops.project.clusterResources


@dataclass(frozen=True)
class Waiver:
    policy: str
    kind: str
    name: str
    namespace: str | None
    reason: str
    written_at: tuple[str, int, int] = ("", 1, 1)  # file, line, column: where a waiver that matches nothing is reported


@dataclass(frozen=True)
class AcceptedRisk:
    risk: str
    environments: tuple[str, ...] | None  # None: every environment that takes it
    reason: str
    written_at: tuple  # its path in the document, where an acceptance that nothing takes is reported


@dataclass(frozen=True)
class Stack:
    name: str
    kubernetes_version: str
    gitops: GitOps
    components: Mapping[str, Component]  # as written, no environment applied
    workloads: Workloads
    environments: tuple[Environment, ...]
    waivers: tuple[Waiver, ...]
    accepted_risks: tuple[AcceptedRisk, ...]
    files: Mapping[str, bytes]  # every file the stack references, by path relative to the stack file
    digest: str  # sha256 of the stack file and every file it references
    written_at: Mapping[str, tuple[str, int, int]] = field(default_factory=dict)  # dotted path -> (file, line, column), for
    # problems found after validation (the plan): spec.components.<name>.extraResources[<i>], spec.gitops.project.*
