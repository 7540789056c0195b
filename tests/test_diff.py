"""kfgen diff in real git repositories: Argo CD objects are part of the review, changes come by impact
(never hidden behind additions), pipelines and environments are drawn, and the diff reads nothing
outside the repository."""

from __future__ import annotations

import json

import pytest
from conftest import committed_example, edit, git, kind_environment

from kfgen.diff import diff
from kfgen.report import as_markdown

STAGING = kind_environment("staging", "sync: {automated: true}")


@pytest.fixture
def repo(git_repo, kfgen):
    return committed_example(git_repo, "stacks/acme", kfgen)


def test_an_argocd_only_change_is_in_the_diff(kfgen, repo):
    """Turning dev's automated sync off changes no hydrated object: the review still shows it, first."""
    edit(repo, "      sync:\n        automated: true ", "      sync:\n        automated: false")
    data = json.loads(kfgen("diff", repo, "--base", "HEAD", "--format", "json").out)
    assert [(c["env"], c["kind"], c["name"], c["change"], c["area"]) for c in data["changes"]] == [
        ("dev", "Application", f"acme-ml-dev-{name}", "changed", "argocd")
        for name in ("ambassador", "argo-workflows", "jupyterhub", "root", "seldon-core", "training-operator", "workloads")]
    assert "   syncPolicy:\n-    automated:\n-      prune: true\n-      selfHeal: true\n" in data["changes"][0]["diff"]
    assert data["sync"] == {"dev": {"before": "automatically (prune, self-heal), follows main, on server https://kubernetes.default.svc",
                                    "after": "by hand, follows main, on server https://kubernetes.default.svc"}}
    text = kfgen("diff", repo, "--base", "HEAD", "--exit-code")
    assert text.code == 1
    assert text.out.splitlines()[:4] == [
        "0 removed, 7 changed, 0 added",
        "  sync     dev: automatically (prune, self-heal), follows main, on server https://kubernetes.default.svc -> "
        "by hand, follows main, on server https://kubernetes.default.svc",
        "  admin    dev: AppProjects or the root Application change; apply argocd/dev/projects/ and root.yaml by hand",
        "  changed  dev: Application argocd/acme-ml-dev-ambassador"]
    markdown = kfgen("diff", repo, "--base", "HEAD", "--format", "markdown").out
    assert ("| dev | syncs automatically (prune, self-heal), follows `main`, on server https://kubernetes.default.svc "
            "| **syncs by hand**, follows `main`, on server https://kubernetes.default.svc |") in markdown


def test_changes_come_before_additions_and_large_additions_are_summarized(kfgen, repo, git_repo):
    """The issue's case: a new environment named before `staging` adds a hundred objects; staging's changed
    TFJob and SeldonDeployment come first and in full, the bulk additions are counted by kind, and what does
    not fit a comment is listed by name."""
    edit(repo, "  workloads:\n    namespace: ml\n", STAGING + "  workloads:\n    namespace: ml\n")
    assert kfgen("render", repo).code == 0
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-qm", "staging")
    alpha = STAGING.replace("    staging:\n", "    alpha:\n")
    changed = STAGING.replace("training: {iris: {accelerator: null}}", "training: {iris: {accelerator: null, replicas: {Worker: 3}}}")
    changed = changed.replace("serving: {iris: {accelerator: null,", "serving: {iris: {accelerator: null, replicas: 3,")
    edit(repo, STAGING, alpha + changed)
    review = diff(repo, "HEAD")
    summary = [(c.env, c.change, c.kind) for c in review.changes]
    assert summary[:2] == [("staging", "changed", "SeldonDeployment"), ("staging", "changed", "TFJob")]
    assert {change for env, change, _ in summary[2:]} == {"added"} and {env for env, _, _ in summary[2:]} == {"alpha"}
    markdown = as_markdown(review, "stack.yaml", "HEAD", limit=20_000)
    assert len(markdown) < 20_000
    assert "| alpha | 0 | 0 | " in markdown and "| staging | 0 | 2 | 0 | on merge, automatically |" in markdown
    details = markdown[markdown.index("#### Changes, by impact"):]
    sections = [line for line in details.splitlines() if line.startswith("<details>")]
    assert sections[:2] == ["<details><summary>changed: <code>staging</code> SeldonDeployment ml/iris</summary>",
                            "<details><summary>changed: <code>staging</code> TFJob ml/iris</summary>"]
    assert "     name: default\n-    replicas: 1\n+    replicas: 3\n" in details  # the SeldonDeployment's predictor
    assert "     Worker:\n-      replicas: 2\n+      replicas: 3\n" in details  # the TFJob's workers
    bulk = [c for c in review.changes if c.area in ("other", "crd")]
    assert len(bulk) > 20
    listed = details[details.index("**Not shown in full:**"):]
    assert listed.startswith("**Not shown in full:** ")
    for c in review.changes:
        if c in bulk:
            continue
        assert f"{c.change}: <code>{c.env}</code> {c.title}</summary>" in details or f"- {c.change}: `{c.env}` {c.title} (+" in listed
    assert f"- added: `alpha` {len(bulk)} more objects (" in listed or f"{len(bulk)} more objects (summarized)" in details


def test_a_changed_pipeline_is_drawn(kfgen, repo):
    edit(repo, "          evaluate: {command: [python, -m, trainer.pipeline, evaluate], inputs: [split, train]}\n",
         "          evaluate: {command: [python, -m, trainer.pipeline, evaluate], inputs: [split, train]}\n"
         "          report: {command: [python, -m, trainer.pipeline, report], inputs: [evaluate]}\n")
    edit(repo, "train:    {command: [python, -m, trainer.pipeline, train]", "train:    {command: [python, -m, trainer.pipeline, train2]")
    markdown = kfgen("diff", repo, "--base", "HEAD", "--format", "markdown").out
    graph = markdown[markdown.index("#### Changed pipelines"):]
    assert graph.startswith("#### Changed pipelines\n\n`iris-classic` in dev, prod:\n\n```mermaid\nflowchart LR\n"
                            '  t0["clean"]\n  t1["evaluate"]\n  t2["load"]\n  t3["report"]:::added\n  t4["split"]\n'
                            '  t5["train"]:::changed\n'
                            "  t2 --> t0\n  t4 --> t1\n  t5 --> t1\n  t1 --> t3\n  t0 --> t4\n  t4 --> t5\n")
    runs = markdown[markdown.index("#### What runs where"):markdown.index("#### Changed pipelines")]
    assert '  subgraph env_dev["dev: syncs automatically (prune, self-heal), follows main"]\n' in runs
    assert '["WorkflowTemplate iris-classic"]:::changed' in runs and '["WorkflowTemplate iris-classic-train"]:::changed' in runs


def test_a_bad_base_names_the_ref_and_the_fix(kfgen, repo, git_repo):
    run = kfgen("diff", repo, "--base", "origin/mian")
    assert (run.code, run.out, run.err) == (2, "", f"--base origin/mian: names no commit in {git_repo}; fetch it first "
                                                   "(git fetch origin; in GitHub Actions, actions/checkout with fetch-depth: 0) "
                                                   "or name an existing branch, tag or commit\n")


def test_a_stack_outside_git_cannot_be_diffed(kfgen, example):
    run = kfgen("diff", example, "--base", "HEAD")
    assert (run.code, run.err) == (2, f"{example}: not in a git repository; kfgen diff compares the stack with a git ref of its repository\n")


def test_diff_reads_nothing_outside_the_repository_unless_allowed(kfgen, repo, git_repo, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: leaked, namespace: ml}\ndata: {secret: s3cr3t}\n")
    relative = "../../../outside/cm.yaml"
    assert (repo.parent / relative).resolve() == (outside / "cm.yaml").resolve()
    edit(repo, "    training-operator:\n      version: v1.8.1\n",
         f"    training-operator:\n      version: v1.8.1\n      extraResources: [{relative}]\n")
    run = kfgen("diff", repo, "--base", "HEAD", "--format", "markdown")
    line = next(n for n, text in enumerate(repo.read_text().splitlines(), 1) if "extraResources" in text)
    assert (run.code, run.out) == (2, "")
    assert run.err == (f"{repo}:{line}:24: spec.components.training-operator.extraResources[0]: '{relative}' is outside the stack's "
                       f"repository ({git_repo}); pass --allow-outside-repo to allow it\n")
    allowed = kfgen("diff", repo, "--base", "HEAD", "--format", "json", "--allow-outside-repo")
    assert allowed.code == 0 and "s3cr3t" in allowed.out


def test_a_symlink_leaving_the_repository_at_the_base_is_not_followed(kfgen, repo, git_repo, tmp_path):
    secret = tmp_path / "secret.yaml"
    secret.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: leaked, namespace: ml}\ndata: {token: s3cr3t}\n")
    (repo.parent / "extra.yaml").symlink_to(secret)
    edit(repo, "    training-operator:\n      version: v1.8.1\n", "    training-operator:\n      version: v1.8.1\n"
         "      extraResources: [extra.yaml]\n")
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-qm", "a symlink out")
    (repo.parent / "extra.yaml").unlink()
    edit(repo, "      extraResources: [extra.yaml]\n", "")
    run = kfgen("diff", repo, "--base", "HEAD")
    assert run.code == 2 and "s3cr3t" not in run.out + run.err
    assert run.err.splitlines()[0] == "the stack at HEAD does not validate with this kfgen:"
    assert "spec.components.training-operator.extraResources[0]: file or folder 'extra.yaml' not found" in run.err.splitlines()[1]
