"""kfgen inputs: the files a render reads, from the repository root, for CI path filters."""

from __future__ import annotations

from conftest import ROOT, committed_example, edit, git

CONFIG_MAP = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: team-settings, namespace: ml}\ndata: {team: ml}\n"


def test_inputs_are_every_file_a_render_reads_wherever_they_live(kfgen, git_repo):
    stack = committed_example(git_repo, "stacks/acme", kfgen)
    (stack.parent / "extra").mkdir()
    (stack.parent / "extra" / "settings.yaml").write_text(CONFIG_MAP)
    (git_repo / "shared-profiles" / "clouds").mkdir(parents=True)
    edit(stack, "    training-operator:\n      version: v1.8.1\n",
         "    training-operator:\n      version: v1.8.1\n      extraResources: [extra/]\n")
    edit(stack, "spec:\n  kubernetesVersion:", "spec:\n  profiles: [../../shared-profiles]\n  kubernetesVersion:")
    run = kfgen("inputs", stack, "--with-output")
    assert (run.code, run.out) == (0, "shared-profiles/\nstacks/acme/deploy/\nstacks/acme/extra/\nstacks/acme/stack.yaml\n")
    assert kfgen("render", stack).code == 0
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-qm", "team settings")

    (git_repo / "README.md").write_text("unrelated\n")
    assert kfgen("inputs", stack, "--with-output", "--changed-since", "HEAD").out == ""
    edit(stack.parent / "extra" / "settings.yaml", "team: ml", "team: platform")
    profile = ROOT / "stacks/multicloud/profiles/clouds/globex-onprem.yaml"
    (git_repo / "shared-profiles" / "clouds" / "onprem.yaml").write_bytes(profile.read_bytes())  # untracked: a new file counts too
    assert kfgen("inputs", stack, "--with-output", "--changed-since", "HEAD").out == "shared-profiles/\nstacks/acme/extra/\n"


def test_a_bad_ref_names_it(kfgen, git_repo):
    stack = committed_example(git_repo, "", kfgen)
    run = kfgen("inputs", stack, "--changed-since", "origin/nope")
    assert (run.code, run.err) == (2, f"--changed-since origin/nope: names no commit in {git_repo}; fetch it first (git fetch origin; "
                                      "in GitHub Actions, actions/checkout with fetch-depth: 0) or name an existing branch, tag or commit\n")


def test_the_ci_example_runs_when_a_render_input_changes_wherever_it_lives():
    import yaml

    workflow = yaml.safe_load((ROOT / "examples/github-actions/kfgen-pr.yml").read_text())
    assert workflow[True] == {"pull_request": None}  # `on:` (YAML 1.1 reads it as true): every pull request, no static paths
    listed = workflow["jobs"]["render"]["steps"]
    checkout = next(s for s in listed if s.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"] == {"fetch-depth": 0}
    steps = {s["name"]: s for s in listed if "name" in s}
    assert 'kfgen inputs "${{ matrix.stack }}" --with-output --changed-since "origin/${{ github.base_ref }}"' in steps[
        "Does this change touch the render?"]["run"]
    for name in ("The committed render is up to date", "What this change deploys", "Comment on the pull request"):
        assert steps[name]["if"] == "steps.touched.outputs.any == 'yes'"
