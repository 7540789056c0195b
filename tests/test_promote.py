"""kfgen promote in a real git repository: dev (follows main) -> staging (env/staging) -> prod (env/prod),
each step a fast-forward of the environment's branch, reviewed as the difference of what it runs."""

from __future__ import annotations

import pytest
from conftest import committed_example, edit, git, kind_environment

STAGING = kind_environment("staging", "sync: {automated: true, revision: env/staging}")


@pytest.fixture
def repo(git_repo, kfgen):
    """The example (dev follows main, prod env/prod) with a staging on env/staging, rendered and committed."""
    stack = committed_example(git_repo, "stacks/acme", kfgen)
    edit(stack, "  workloads:\n    namespace: ml\n", STAGING + "  workloads:\n    namespace: ml\n")
    assert kfgen("render", stack).code == 0
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-qm", "staging")
    return stack


def head(repo_root, ref="HEAD") -> str:
    return git(repo_root, "rev-parse", ref).strip()


def change_steps(kfgen, stack, repo_root) -> str:
    edit(stack, '        args: [--steps, "200"]', '        args: [--steps, "300"]')
    assert kfgen("render", stack).code == 0
    git(repo_root, "commit", "-qam", "300 steps")
    return head(repo_root)


def test_dev_to_staging_to_prod(kfgen, repo, git_repo):
    first = head(git_repo)
    step = kfgen("promote", repo, "--from", "dev", "--to", "staging")
    assert step.code == 0
    lines = step.out.splitlines()
    assert lines[0] == f"promote dev -> staging: env/staging (new branch) -> {first[:12]}"
    assert lines[1].startswith("0 removed, 0 changed, ") and lines[1].endswith(" added")
    assert step.err == f"moved env/staging to {first[:12]}; publish it: git push origin env/staging\n"
    assert head(git_repo, "env/staging") == first

    step = kfgen("promote", repo, "--from", "staging", "--to", "prod")
    assert (step.code, step.out.splitlines()[0]) == (0, f"promote staging -> prod: env/prod (new branch) -> {first[:12]}")

    second = change_steps(kfgen, repo, git_repo)
    step = kfgen("promote", repo, "--from", "dev", "--to", "staging")
    assert step.code == 0
    assert step.out.splitlines()[:3] == [f"promote dev -> staging: env/staging {first[:12]} -> {second[:12]}",
                                         "0 removed, 1 changed, 0 added", "  changed  staging: TFJob ml/iris"]
    assert "             - --steps\n-            - '200'\n+            - '300'\n" in step.out
    assert head(git_repo, "env/staging") == second and head(git_repo, "env/prod") == first  # prod waits for its own promotion

    step = kfgen("promote", repo, "--from", "staging", "--to", "prod", "--format", "markdown")
    assert step.code == 0
    assert step.out.startswith(f"### kfgen promote staging -> prod: env/prod {first[:12]} -> {second[:12]}\n\n"
                               "| environment | removed | changed | added | reaches it |\n|---|---:|---:|---:|---|\n"
                               "| prod | 0 | 1 | 0 | when promoted to env/prod, when synced by hand |\n")
    assert "<details><summary>changed: <code>prod</code> TFJob ml/iris</summary>" in step.out
    assert head(git_repo, "env/prod") == second

    again = kfgen("promote", repo, "--from", "staging", "--to", "prod")
    assert (again.code, again.err) == (0, f"env/prod is already at {second[:12]}: nothing to promote\n")


def test_a_dry_run_moves_nothing(kfgen, repo, git_repo):
    run = kfgen("promote", repo, "--from", "dev", "--to", "staging", "--dry-run")
    assert (run.code, run.err) == (0, "dry run: env/staging not moved\n")
    assert git(git_repo, "branch", "--list", "env/staging") == ""


def test_going_back_is_a_rollback_said_in_writing(kfgen, repo, git_repo):
    first = head(git_repo)
    second = change_steps(kfgen, repo, git_repo)
    assert kfgen("promote", repo, "--from", "dev", "--to", "staging").code == 0
    run = kfgen("promote", repo, "--from", "dev", "--to", "staging", "--revision", first)
    assert (run.code, run.err) == (2, f"--to staging: env/staging is at {second[:12]}, which {first[:12]} does not contain: moving it "
                                      "would drop commits (a rollback); pass --rollback to do it\n")
    run = kfgen("promote", repo, "--from", "dev", "--to", "staging", "--revision", first, "--rollback")
    assert run.code == 0 and run.out.splitlines()[1:3] == ["0 removed, 1 changed, 0 added", "  changed  staging: TFJob ml/iris"]
    assert head(git_repo, "env/staging") == first


def test_only_an_environment_with_its_own_branch_is_promoted(kfgen, repo):
    run = kfgen("promote", repo, "--from", "staging", "--to", "dev")
    assert (run.code, run.err) == (2, "--to dev: it follows 'main', the stack's own revision (spec.gitops.targetRevision); give it a "
                                      "branch of its own to promote into: spec.environments.dev.sync.revision: env/dev\n")
    run = kfgen("promote", repo, "--from", "dev", "--to", "qa")
    assert (run.code, run.err) == (2, f"--to qa: no environment 'qa' in {repo} (have: dev, prod, staging)\n")


def test_a_commit_without_the_environments_render_is_refused(kfgen, repo, git_repo):
    before_staging = head(git_repo, "HEAD~1")
    run = kfgen("promote", repo, "--from", "dev", "--to", "staging", "--revision", before_staging)
    assert (run.code, run.err) == (2, f"{before_staging[:12]}:stacks/acme/deploy/argocd/staging/apps: not there: staging has no render at "
                                      f"{before_staging[:12]} ('platform'); promote a commit whose render includes staging\n")


def test_a_commit_from_before_the_environment_had_its_branch_is_refused(kfgen, repo, git_repo):
    edit(repo, "      sync: {automated: true, revision: env/staging}\n", "      sync: {automated: true, revision: env/qa}\n")
    assert kfgen("render", repo).code == 0
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-qm", "staging follows env/qa")
    edit(repo, "      sync: {automated: true, revision: env/qa}\n", "      sync: {automated: true, revision: env/staging}\n")
    old = head(git_repo)
    run = kfgen("promote", repo, "--from", "dev", "--to", "staging", "--revision", old)
    where = f"{old[:12]}:stacks/acme/deploy/argocd/staging"
    assert run.code == 2
    assert run.err.splitlines()[0] == (f"{where}/apps/ambassador.yaml: follows 'env/qa', not 'env/staging': at {old[:12]} staging "
                                       "did not have its own branch yet; promote a later commit")
    assert len(run.err.splitlines()) == 7  # six Applications and the root
