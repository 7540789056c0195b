"""check and diff in real git repositories (tmp dirs, pinned identity), and the Argo CD objects."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import EXAMPLES, ROOT, SHARED, copy_stack, edit, git
from kfgen.review import Change, as_markdown
from kfgen.yamlio import load_all

pytestmark = pytest.mark.kustomize  # end to end: renders with the real kustomize


@pytest.fixture
def repo(git_repo, kfgen):
    """A platform repository: the example stack and its render, committed."""
    stack = copy_stack("example", git_repo)
    assert kfgen("render", stack).code == 0
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "platform")
    return stack


def test_check_passes_on_a_fresh_render(kfgen, repo):
    run = kfgen("check", repo)
    assert (run.code, run.out) == (0, f"{repo.parent / 'deploy'}: up to date with {repo}\n")


def test_check_fails_on_a_hand_edit_naming_the_file(kfgen, repo):
    edited = repo.parent / "deploy/rendered/prod/training-operator/ml/tfjob-iris.yaml"
    edit(edited, "backoffLimit: 3", "backoffLimit: 9")
    (repo.parent / "deploy/rendered/prod/extra.yaml").write_text("kind: Extra\n")
    run = kfgen("check", repo)
    assert run.code == 1
    assert run.out.splitlines() == [f"{repo.parent / 'deploy/rendered/prod/extra.yaml'}: not written by a fresh render (hand-added or stale)",
                                    f"{edited}: differs from a fresh render"]
    assert run.err == f"{repo.parent / 'deploy'}: 2 files differ from a fresh render of {repo}; run: kfgen render {repo}\n"


def test_check_fails_on_a_stale_render(kfgen, repo):
    edit(repo, "        args: [--steps, \"200\"]", "        args: [--steps, \"300\"]")
    run = kfgen("check", repo)
    assert run.code == 1
    stale = {line.split(":")[0].removeprefix(str(repo.parent / "deploy") + "/") for line in run.out.splitlines()}
    assert "rendered/prod/training-operator/ml/tfjob-iris.yaml" in stale and "provenance.json" in stale


def changed_replicas(repo):
    edit(repo, "          serving:\n            iris:\n              replicas: 2\n", "          serving:\n            iris:\n              replicas: 5\n")


def test_diff_of_one_workloads_replicas_in_three_formats(kfgen, repo):
    changed_replicas(repo)
    as_json = kfgen("diff", repo, "--base", "HEAD", "--format", "json")
    assert as_json.code == 0, as_json.err
    data = json.loads(as_json.out)
    assert [(c["env"], c["kind"], c["namespace"], c["name"], c["change"]) for c in data["changes"]] == [
        ("prod", "SeldonDeployment", "ml", "iris", "changed")]
    assert "-    replicas: 2\n+    replicas: 5\n" in data["changes"][0]["diff"]
    assert data["summary"] == {"environments": {"prod": {"added": 0, "removed": 0, "changed": 1}}, "added": 0, "removed": 0, "changed": 1}
    text = kfgen("diff", repo, "--base", "HEAD", "--exit-code")
    assert text.code == 1
    assert text.out.startswith("0 added, 0 removed, 1 changed\n  changed  prod: SeldonDeployment ml/iris\n\n--- a/prod/SeldonDeployment/ml/iris\n")
    markdown = kfgen("diff", repo, "--base", "HEAD", "--format", "markdown").out
    assert "| prod | 0 | 0 | 1 |" in markdown
    assert markdown.count("<details>") == 1 and "<summary>changed: <code>prod</code> SeldonDeployment ml/iris</summary>" in markdown


def test_diff_of_a_new_environment_is_only_additions(kfgen, repo):
    text = repo.read_text().replace("  workloads:\n    namespace: ml\n", """\
    staging:
      cloud: eks
      identity: {default: "arn:aws:iam::123456789012:role/ml"}
      artifacts: {bucket: acme-staging-artifacts, region: eu-west-1}
      accelerators:
        gpu: {type: nvidia-t4}
  workloads:
    namespace: ml
""")
    repo.write_text(text)
    data = json.loads(kfgen("diff", repo, "--base", "HEAD", "--format", "json").out)
    assert data["changes"] and {c["change"] for c in data["changes"]} == {"added"} and {c["env"] for c in data["changes"]} == {"staging"}
    assert data["summary"]["added"] == len(data["changes"]) > 90


def test_diff_when_the_stack_is_new(kfgen, git_repo):
    (git_repo / "README.md").write_text("platform\n")
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "empty")
    stack = copy_stack("example", git_repo)
    data = json.loads(kfgen("diff", stack, "--base", "HEAD", "--format", "json").out)
    assert {c["change"] for c in data["changes"]} == {"added"}


def test_diff_of_an_unknown_ref_is_a_tool_error(kfgen, repo):
    run = kfgen("diff", repo, "--base", "no-such-branch")
    assert run.code == 3 and run.err.startswith("git rev-parse --verify failed")


def test_markdown_stays_under_the_comment_limit():
    big = "".join(f"+line {i}\n" for i in range(3000))
    changes = [Change("prod", "v1", "ConfigMap", "ml", f"cm-{i}", "changed", big) for i in range(10)]
    text = as_markdown(changes, "stack.yaml", "origin/main")
    assert len(text) < 65_000
    assert text.count("<details>") == 2
    assert text.endswith("**Cut:** 8 more of 10 changed objects are not shown here (a comment holds 65,000 characters). "
                         "Run `kfgen diff stack.yaml --base origin/main` for all of them.\n")


@pytest.mark.parametrize("name", [p.name for p in EXAMPLES])
def test_argocd_objects_are_valid_and_point_at_real_folders(kfgen, tmp_path, name):
    stack = copy_stack(name, tmp_path)
    out = tmp_path / "out"
    assert kfgen("render", stack, "--out", out).code == 0
    checker = SHARED / "tools" / "upstream_check.py"
    for env in sorted((out / "argocd").iterdir()):
        if checker.is_file() or os.environ.get("CI"):
            done = subprocess.run([sys.executable, str(checker), str(env)], capture_output=True, text=True)
            assert done.returncode == 0, done.stdout + done.stderr
        apps = [o for f in sorted(env.rglob("*.yaml")) for o in load_all(f.read_text()) if o["kind"] == "Application"]
        rendered = {p.name for p in (out / "rendered" / env.name).iterdir()}
        components = [a for a in apps if not a["metadata"]["name"].endswith("-root")]
        assert {a["metadata"]["labels"]["kfgen.io/component"] for a in components} == rendered
        for app in apps:
            path = app["spec"]["source"]["path"].removeprefix("deploy/")
            assert (out / path).is_dir(), app["metadata"]["name"]
            assert not list((out / path).glob("kustomization.yaml")) or "directory" not in app["spec"]["source"]
        (project,) = [o for o in load_all((env / "apps" / "project.yaml").read_text())]
        cluster_kinds = {(o["apiVersion"].rpartition("/")[0], o["kind"]) for f in (out / "rendered" / env.name).rglob("*.yaml")
                         for o in load_all(f.read_text()) if "namespace" not in o["metadata"]}
        assert {(k["group"], k["kind"]) for k in project["spec"]["clusterResourceWhitelist"]} == cluster_kinds
        for app in components:
            assert ("automated" in app["spec"]["syncPolicy"]) == (env.name not in ("prod", "production"))


def test_an_environment_can_sync_its_kustomize_overlay_instead(kfgen, example, tmp_path):
    edit(example, "      exposure: external\n", "      exposure: external\n      sync: {source: kustomize, automated: true}\n")
    out = tmp_path / "out"
    assert kfgen("render", example, "--out", out).code == 0
    apps = sorted(p.name for p in (out / "argocd/prod/apps").iterdir())
    assert apps == ["prod.yaml", "project.yaml"]
    (app,) = load_all((out / "argocd/prod/apps/prod.yaml").read_text())
    assert app["spec"]["source"]["path"] == "deploy/envs/prod" and "directory" not in app["spec"]["source"]
    assert app["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}


def test_pre_commit_hook_runs_kfgen_check():
    (hook,) = load_all((ROOT / ".pre-commit-hooks.yaml").read_text())[0]
    assert (hook["id"], hook["entry"], hook["pass_filenames"]) == ("kfgen-check", "kfgen check", False)
