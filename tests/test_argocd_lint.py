"""kfgen lint on the Argo CD side: argocd/ against Argo CD's real CRDs (../shared), and the policies
KFG101 (paths), KFG102 (CRDs and Namespaces kept), KFG103 (exact projects)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import EXAMPLES, SHARED, copy_stack, edit

from kfgen.lint import lint_objects
from kfgen.yamlio import load_all

ARGOCD_CRDS = SHARED / "upstream-crds" / "argo-cd"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    from kfgen.cli import main

    tmp = tmp_path_factory.mktemp("lint")
    stack = copy_stack("example", tmp)
    assert main(["render", str(stack), "--out", str(tmp / "out")]) == 0
    return tmp / "out"


@pytest.fixture
def tree(rendered, tmp_path):
    import shutil

    shutil.copytree(rendered, tmp_path / "out")
    return tmp_path / "out"


def needs_crds():
    if not ARGOCD_CRDS.is_dir() and not os.environ.get("CI"):
        pytest.skip("no ../shared/upstream-crds/argo-cd")


def test_a_render_is_clean_against_argocds_crds(kfgen, tree):
    needs_crds()
    run = kfgen("lint", tree, "--crds", ARGOCD_CRDS)
    assert (run.code, run.out, run.err) == (0, "", f"{tree}: 0 violations\n")


def test_an_argocd_object_that_breaks_its_crd_is_reported(kfgen, tree):
    needs_crds()
    edit(tree / "argocd/prod/apps/jupyterhub.yaml", "  syncPolicy:\n", "  syncPolicy:\n    automatd: {}\n")
    run = kfgen("lint", tree, "--crds", ARGOCD_CRDS)
    assert run.code == 1
    assert run.out == (f"{tree}/argocd/prod/apps/jupyterhub.yaml: spec.syncPolicy: [SCHEMA] Additional properties are not allowed "
                       "('automatd' was unexpected)\n")


def test_the_argocd_policies(kfgen, tree):
    edit(tree / "argocd/prod/apps/seldon-core.yaml", "path: deploy/rendered/prod/seldon-core", "path: deploy/rendered/prod/seldon")
    edit(tree / "argocd/dev/root.yaml", "path: deploy/argocd/dev/apps", "path: deploy/argocd/dev")
    edit(tree / "argocd/prod/projects/components.yaml", "- https://github.com/acme/ml-gitops.git", "- https://github.com/acme/*")
    edit(tree / "argocd/prod/projects/apps.yaml", "    kind: Application\n", "    kind: Application\n  - group: ''\n    kind: Secret\n")
    crd = tree / "rendered/prod/training-operator/cluster/customresourcedefinition-tfjobs.kubeflow.org.yaml"
    edit(crd, "argocd.argoproj.io/sync-options: Prune=false,Delete=false", "argocd.argoproj.io/sync-options: Prune=false")
    run = kfgen("lint", tree)
    assert run.code == 1
    assert run.out.splitlines() == [
        f"{tree}/argocd/dev/root.yaml: spec.source.path: [KFG103] a root Application syncs only its environment's apps/ folder "
        "(never the projects that constrain it)",
        f"{tree}/argocd/prod/apps/seldon-core.yaml: spec.source.path: [KFG101] 'deploy/rendered/prod/seldon' is not a folder of this "
        "render (its paths start at deploy/)",
        f"{tree}/argocd/prod/projects/apps.yaml: spec: [KFG103] the root's project allows only Applications (and ApplicationSets), "
        "nothing cluster-scoped",
        f"{tree}/argocd/prod/projects/components.yaml: spec.sourceRepos[0]: [KFG103] 'https://github.com/acme/*' is a glob",
        f"{tree}/rendered/prod/training-operator/cluster/customresourcedefinition-tfjobs.kubeflow.org.yaml: "
        "metadata.annotations.argocd.argoproj.io/sync-options: [KFG102] Delete=false missing: Argo CD would delete it "
        "(and everything of its kind or in it) with its Application"]


def test_a_crd_that_argocd_may_delete_fails_the_render_check_unless_waived():
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "widgets.acme.example"}}
    found = lint_objects([("crd.yaml", crd)], "1.31", [], missing_ok=True)
    assert [str(v) for v in found if v.policy == "KFG102"] == [
        "crd.yaml: metadata.annotations.argocd.argoproj.io/sync-options: [KFG102] Prune=false and Delete=false missing: "
        "Argo CD would delete it (and everything of its kind or in it) with its Application"]
    crd["metadata"]["annotations"] = {"waivers.kfgen.io/KFG102": "a scratch CRD, recreated by its operator"}
    assert [v for v in lint_objects([("crd.yaml", crd)], "1.31", [], missing_ok=True) if v.policy == "KFG102"] == []


@pytest.mark.parametrize("name", [p.name for p in EXAMPLES])
def test_every_examples_argocd_objects_pass_the_upstream_checker(tmp_path, name):
    """The shared checker (kubernetes-validate and the upstream CRDs), not kfgen's own lint."""
    from kfgen.cli import main

    stack = copy_stack(name, tmp_path)
    out = tmp_path / "out"
    assert main(["render", str(stack), "--out", str(out)]) == 0
    checker = SHARED / "tools" / "upstream_check.py"
    if not checker.is_file() and not os.environ.get("CI"):
        pytest.skip("no ../shared/tools/upstream_check.py")
    for env in sorted((out / "argocd").iterdir()):
        done = subprocess.run([sys.executable, str(checker), str(env)], capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
        apps = [o for f in sorted(env.rglob("*.yaml")) for o in load_all(f.read_text()) if o["kind"] in ("Application", "ApplicationSet")]
        assert {a["metadata"]["labels"].get("kfgen.io/component") for a in apps} - {None} == {p.name for p in (out / "rendered" / env.name).iterdir()}
