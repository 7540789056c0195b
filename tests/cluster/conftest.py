"""The cluster tier: one real control plane per session (see controlplane.py), every example's
environments rendered by kfgen and synced into it as Argo CD would (see argocd_sync.py).

Without the built programs (python tests/cluster/build.py) the tier is skipped with one line
naming what is missing; in CI (CI set) that is a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from . import build
from .argocd_sync import Applier, Synced, kubectl, load_folder, sync_environment
from .controlplane import MERGE, ApiError, ControlPlane

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SHARED = ROOT.parent / "shared"
UPSTREAM_CRDS = SHARED / "upstream-crds"
ARGOCD_CRDS = UPSTREAM_CRDS / "argo-cd"
STACKS = sorted(p.parent.name for p in (ROOT / "stacks").glob("*/stack.yaml"))


def environments() -> list[tuple[str, str]]:
    """(stack, environment) for every environment of every example."""
    out = []
    for stack in STACKS:
        doc = yaml.safe_load((ROOT / "stacks" / stack / "stack.yaml").read_text())
        out += [(stack, env) for env in doc["spec"]["environments"]]
    return out


ENVIRONMENTS = environments()
ENV_IDS = [f"{s}-{e}" for s, e in ENVIRONMENTS]


_NOT_RUN: list[str] = []


def pytest_collection_modifyitems(config, items):
    """Mark the tier's tests `cluster`; without its programs (outside CI) leave them out, said once."""
    ours = [item for item in items if Path(str(item.fspath)).is_relative_to(HERE)]
    for item in ours:
        item.add_marker(pytest.mark.cluster)
    lack = missing() if ours else None
    if lack and not os.environ.get("CI"):
        config.hook.pytest_deselected(items=ours)
        items[:] = [item for item in items if item not in ours]
        _NOT_RUN.append(f"cluster tier skipped ({len(ours)} tests): {lack}")


def pytest_terminal_summary(terminalreporter):
    for line in _NOT_RUN:
        terminalreporter.write_line(line)


def missing() -> str | None:
    """What this machine lacks for the tier, or None."""
    for name in ("kube", "etcd", "helm"):
        if build.binary(name) is None:
            return f"{name} is not built (run: python tests/cluster/build.py)"
    if not Path(kubectl()).exists():
        return f"kubectl is not next to {sys.executable} (pip install -e .)"
    if not shutil.which("openssl"):
        return "openssl is not on PATH"
    if not ARGOCD_CRDS.is_dir():
        return f"{ARGOCD_CRDS} (the shared reference data) is missing"
    return None


def require_tier() -> None:
    lack = missing()
    if lack:
        if os.environ.get("CI"):
            pytest.fail(f"cluster tier: {lack}", pytrace=False)
        pytest.skip(f"cluster tier: {lack}")


# --- the cluster ------------------------------------------------------------------------------------

SYSTEM_NAMESPACES = {"default", "kube-system", "kube-public", "kube-node-lease"}
ARGOCD_CRD_NAMES = {"applications.argoproj.io", "applicationsets.argoproj.io", "appprojects.argoproj.io"}
CLUSTER_KINDS = [  # what a sync may create at cluster scope, deleted between environments
    ("admissionregistration.k8s.io/v1", "validatingwebhookconfigurations"),
    ("admissionregistration.k8s.io/v1", "mutatingwebhookconfigurations"),
    ("rbac.authorization.k8s.io/v1", "clusterrolebindings"),
    ("rbac.authorization.k8s.io/v1", "clusterroles"),
    ("scheduling.k8s.io/v1", "priorityclasses"),
    ("storage.k8s.io/v1", "storageclasses"),
]


@dataclass
class Cluster:
    """The session's control plane, and what is currently synced into it."""

    plane: ControlPlane
    work: Path
    renders: dict[str, Path]
    state: object = None
    synced_now: Synced | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def api(self):
        return self.plane.api

    def applier(self, field_manager: str = "argocd-controller") -> Applier:
        folder = self.work / "applies"
        folder.mkdir(exist_ok=True)
        return Applier(self.plane.admin_kubeconfig, folder, self.api, field_manager)

    def synced(self, stack: str, env: str) -> Synced:
        """The environment, synced as Argo CD would into a cluster that had nothing of kfgen's."""
        if self.state != ("env", stack, env):
            self.clean()
            start = time.monotonic()
            self.synced_now = sync_environment(self.renders[stack], env, self.applier())
            self.seconds[f"sync {stack}/{env}"] = time.monotonic() - start
            self.state = ("env", stack, env)
        assert self.synced_now is not None
        return self.synced_now

    def clean(self) -> None:
        """Back to a cluster with Argo CD's CRDs and its namespace, nothing else of ours."""
        if self.state == "clean":
            return
        start = time.monotonic()
        api = self.api
        for app in api.request("GET", "/apis/argoproj.io/v1alpha1/applications").get("items", []):
            if app["metadata"].get("finalizers"):  # Argo CD's controller would clear these; it does not run here
                api.request("PATCH", api.path(app), {"metadata": {"finalizers": None}}, content_type=MERGE)
        for api_version, plural in CLUSTER_KINDS:
            for item in api.request("GET", f"/apis/{api_version}/{plural}").get("items", []):
                meta = item["metadata"]
                if meta["name"].startswith("system:") or meta.get("labels", {}).get("kubernetes.io/bootstrapping") == "rbac-defaults" \
                        or meta["name"] in ("system-node-critical", "system-cluster-critical", "cluster-admin", "admin", "edit", "view"):
                    continue
                api.request("DELETE", f"/apis/{api_version}/{plural}/{meta['name']}")
        for ns in api.request("GET", "/api/v1/namespaces")["items"]:
            name = ns["metadata"]["name"]
            if name not in SYSTEM_NAMESPACES and name != "argocd" and "deletionTimestamp" not in ns["metadata"]:
                api.request("DELETE", f"/api/v1/namespaces/{name}")
        for crd in api.request("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions")["items"]:
            if (crd["spec"].get("conversion") or {}).get("strategy") == "Webhook":
                # Its webhook (Emissary's apiext) never runs here: without this neither its objects
                # nor their namespaces could be deleted.
                api.request("PATCH", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd['metadata']['name']}",
                            {"spec": {"conversion": {"strategy": "None", "webhook": None}}}, content_type=MERGE)
        for crd in api.request("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions")["items"]:
            if crd["metadata"]["name"] not in ARGOCD_CRD_NAMES:
                api.request("DELETE", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd['metadata']['name']}")
        for obj in api.request("GET", "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications")["items"] + \
                api.request("GET", "/apis/argoproj.io/v1alpha1/namespaces/argocd/appprojects")["items"]:
            api.request("DELETE", api.path(obj))
        deadline = time.monotonic() + 120
        while True:
            left = [ns["metadata"]["name"] for ns in api.request("GET", "/api/v1/namespaces")["items"]
                    if ns["metadata"]["name"] not in SYSTEM_NAMESPACES | {"argocd"}]
            left += [c["metadata"]["name"] for c in api.request("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions")["items"]
                     if c["metadata"]["name"] not in ARGOCD_CRD_NAMES]
            if not left:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"not deleted after 120s: {left}")
            if time.monotonic() > deadline - 90:
                self._unstick_crds()
            time.sleep(0.2)
        self.state = "clean"
        self.synced_now = None
        self.seconds["clean"] = self.seconds.get("clean", 0) + time.monotonic() - start

    def _unstick_crds(self) -> None:
        """A CRD whose instances are all gone but whose cleanup finalizer is still there: the API
        server's finalizer controller backs off exponentially after a transient error (a watch
        cache re-initializing while many CRDs go at once); finish its work for it."""
        api = self.api
        for crd in api.request("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions")["items"]:
            if "deletionTimestamp" not in crd["metadata"] or not crd["metadata"].get("finalizers"):
                continue
            storage = next(v["name"] for v in crd["spec"]["versions"] if v["storage"])
            try:
                items = api.request("GET", f"/apis/{crd['spec']['group']}/{storage}/{crd['spec']['names']['plural']}")["items"]
            except ApiError:
                items = []  # no longer served: nothing left to list
            if not items:
                api.request("PATCH", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd['metadata']['name']}",
                            {"metadata": {"finalizers": None}}, content_type=MERGE)

    def dirty(self) -> None:
        """Say that a test changed the cluster: the next user cleans it."""
        self.state = "dirty"


UPSTREAM = {  # the upstream CRDs, per group that a scenario writes
    "argoproj.io": UPSTREAM_CRDS / "argo-workflows-minimal",
    "kubeflow.org": UPSTREAM_CRDS / "training-operator" / "kubeflow.org_tfjobs.yaml",
    # What users install: the chart's CRD (controller-gen's raw output, in upstream-crds/, has
    # `children: items: {}`, which an API server refuses; the chart carries the patched schema).
    "machinelearning.seldon.io": SHARED / "upstream-installs" / "seldon-core" / "v1.17.1" / "chart",
}
SELDON_CRD_TEMPLATE = "templates/customresourcedefinition_v1_seldondeployments.machinelearning.seldon.io.yaml"


def upstream_crds() -> list[dict]:
    """The upstream CRDs of the pinned versions for the kinds whose controllers the tests imitate."""
    crds = load_folder(UPSTREAM["argoproj.io"])
    crds += [d for d in yaml.safe_load_all(UPSTREAM["kubeflow.org"].read_text()) if d]
    chart = subprocess.run([str(build.binary("helm")), "template", "seldon-core-operator", str(UPSTREAM["machinelearning.seldon.io"]),
                            "--namespace", "seldon-system", "--kube-version", "1.31.14", "--show-only", SELDON_CRD_TEMPLATE],
                           capture_output=True, text=True, check=True)
    crds += [d for d in yaml.safe_load_all(chart.stdout) if d]
    return crds


@pytest.fixture(scope="session")
def renders(tmp_path_factory) -> dict[str, Path]:
    """Each example rendered by kfgen into a temp folder: {stack: output folder}."""
    from kfgen.render import render

    out = {}
    for stack in STACKS:
        target = tmp_path_factory.mktemp(f"render-{stack}") / "deploy"
        render(ROOT / "stacks" / stack / "stack.yaml", target)
        out[stack] = target
    return out


@pytest.fixture(scope="session")
def cluster(tmp_path_factory, renders) -> Cluster:
    require_tier()
    work = tmp_path_factory.mktemp("cluster")
    plane = ControlPlane(work / "plane", build.binary("kube"), build.binary("etcd"))
    plane.folder.mkdir()
    it = Cluster(plane, work, renders)
    try:
        start = time.monotonic()
        plane.start()
        it.seconds["start"] = time.monotonic() - start
        # Argo CD's own install: its namespace and CRDs (server-side: the ApplicationSet CRD is over
        # the 256 KiB annotation limit of a client-side apply).
        install = it.applier("argocd-install")
        install.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "argocd"}}])
        install.apply(load_folder(ARGOCD_CRDS))
        it.state = "clean"
        yield it
    finally:
        plane.stop()  # every process, whatever the tests did
        print(f"\ncluster tier timings: {', '.join(f'{k} {v:.1f}s' for k, v in it.seconds.items())}")


@pytest.fixture(scope="session", params=ENVIRONMENTS, ids=ENV_IDS)
def environment(request) -> tuple[str, str]:
    """(stack, env); session-scoped so that pytest runs every test of one environment together."""
    return request.param


def ident(obj: dict) -> str:
    ns = obj["metadata"].get("namespace")
    return f"{obj['kind']} {ns + '/' if ns else ''}{obj['metadata']['name']}"
