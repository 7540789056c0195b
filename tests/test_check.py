"""kfgen check in real git repositories (pinned identity), with the stack at the root and in a subfolder:
it passes with no flags right after a render, shows what differs, and every Argo CD path exists at the
revision it names."""

from __future__ import annotations

import pytest
from conftest import ROOT, edit, git, kind_environment
from conftest import committed_example as platform

from kfgen.yamlio import load_all

EDGE = kind_environment("edge", "clusters: [edge-eu-1, edge-eu-2, edge-us-1]")


@pytest.mark.parametrize("folder", ["", "stacks/acme"])
def test_check_passes_with_no_flags_right_after_a_render(kfgen, git_repo, monkeypatch, folder):
    platform(git_repo, folder, kfgen)
    monkeypatch.chdir(git_repo)
    run = kfgen("check")
    prefix = f"{folder}/" if folder else ""
    assert (run.code, run.out, run.err) == (0, f"{prefix}deploy: up to date with {prefix}stack.yaml\n", "")


@pytest.mark.parametrize("folder", ["", "stacks/acme"])
def test_every_argocd_path_exists_at_the_revision_it_names(kfgen, git_repo, monkeypatch, folder):
    """prod follows its own branch: promoted once, its Applications there point at folders of that commit;
    dev's and the edge fleet's ApplicationSets follow main. Checked with git itself, not with kfgen."""
    stack = platform(git_repo, folder, kfgen)
    edit(stack, "  workloads:\n    namespace: ml\n", EDGE + "  workloads:\n    namespace: ml\n")
    assert kfgen("render", stack).code == 0
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-qm", "an edge fleet")
    assert kfgen("promote", stack, "--from", "dev", "--to", "prod").code == 0
    deploy = stack.parent / "deploy"
    checked = []
    for file in sorted((deploy / "argocd").rglob("*.yaml")):
        for o in load_all(file.read_text()):
            if o["kind"] not in ("Application", "ApplicationSet"):
                continue
            spec = o["spec"]["template"]["spec"] if o["kind"] == "ApplicationSet" else o["spec"]
            revision, path = spec["source"]["targetRevision"], spec["source"]["path"]
            assert git(git_repo, "cat-file", "-t", f"{revision}:{path}") == "tree\n", (file, revision, path)
            checked.append((file.relative_to(deploy / "argocd").parts[0], revision))
    assert sorted(set(checked)) == [("dev", "main"), ("edge", "main"), ("prod", "env/prod")]
    assert len(checked) == 21  # per environment: the root and six components (ApplicationSets for the edge fleet)
    kinds = {o["kind"] for f in (deploy / "argocd/edge/apps").glob("*.yaml") for o in load_all(f.read_text())}
    assert kinds == {"ApplicationSet"}


def test_check_shows_what_differs(kfgen, git_repo):
    stack = platform(git_repo, "stacks/acme", kfgen)
    deploy = stack.parent / "deploy"
    edited = deploy / "rendered/prod/training-operator/ml/tfjob-iris.yaml"
    edit(edited, "backoffLimit: 3", "backoffLimit: 9")
    (deploy / "rendered/prod/extra.yaml").write_text("kind: Extra\n")
    run = kfgen("check", stack)
    assert run.code == 1
    assert run.out.splitlines()[:2] == [f"{deploy}/rendered/prod/extra.yaml: not written by a fresh render (hand-added or stale)",
                                        f"{edited}: differs from a fresh render"]
    assert run.out.split("\n\n", 1)[1] == (
        "--- committed/rendered/prod/training-operator/ml/tfjob-iris.yaml\n"
        "+++ fresh/rendered/prod/training-operator/ml/tfjob-iris.yaml\n"
        + "".join(line for line in _hunk(edited)))
    assert run.err == f"{deploy}: 2 files differ from a fresh render of {stack}; run: kfgen render {stack}\n"
    names = kfgen("check", stack, "--names-only")
    assert (names.code, len(names.out.splitlines())) == (1, 2)


def _hunk(edited):
    """The expected hunk, made independently of kfgen: the committed file, the edit undone."""
    lines = edited.read_text().splitlines(True)
    i = next(n for n, line in enumerate(lines) if "backoffLimit: 9" in line)
    before, after = lines[max(0, i - 3):i], lines[i + 1:i + 4]
    return [f"@@ -{i - len(before) + 1},{len(before) + 1 + len(after)} +{i - len(before) + 1},{len(before) + 1 + len(after)} @@\n",
            *(" " + line for line in before), "-" + lines[i], "+" + lines[i].replace("9", "3"), *(" " + line for line in after)]


def test_check_of_a_stale_render_names_the_files_and_the_change(kfgen, git_repo):
    stack = platform(git_repo, "", kfgen)
    edit(stack, '        args: [--steps, "200"]', '        args: [--steps, "300"]')
    run = kfgen("check", stack, "--names-only")
    assert run.code == 1
    stale = {line.split(": ")[0].removeprefix(str(stack.parent / "deploy") + "/") for line in run.out.splitlines()}
    assert {"rendered/prod/training-operator/ml/tfjob-iris.yaml", "rendered/dev/training-operator/ml/tfjob-iris.yaml",
            "provenance.json"} <= stale
    out = kfgen("check", stack).out
    diff = out[out.index("--- committed/rendered/prod/training-operator/ml/tfjob-iris.yaml\n"):]
    assert diff.split("\n")[2] == "@@ -31,7 +31,7 @@"  # line 34 of the file (args), with 3 lines of context
    assert "             - --steps\n-            - '200'\n+            - '300'\n" in diff


def test_check_with_no_stack_anywhere_says_what_to_do(kfgen, git_repo, monkeypatch):
    (git_repo / "README.md").write_text("no stack here\n")
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "empty")
    monkeypatch.chdir(git_repo)
    run = kfgen("check")
    assert (run.code, run.out, run.err) == (2, "", f"{git_repo}: no stack.yaml here or tracked in {git_repo}; "
                                                   "name the stack: kfgen check path/to/stack.yaml\n")


def test_pre_commit_hook_runs_kfgen_check():
    (hook,) = load_all((ROOT / ".pre-commit-hooks.yaml").read_text())[0]
    assert (hook["id"], hook["entry"], hook["pass_filenames"]) == ("kfgen-check", "kfgen check", False)


def test_an_unchanged_tree_is_proven_from_its_record_and_nothing_else_is(kfgen, example, tmp_path):
    """The proof (no render): every input and every file as the sealed record says. Each change below
    breaks it, and check then renders and names the difference."""
    import json

    from kfgen.cache import cache_dir
    from kfgen.check import prove

    out = tmp_path / "out"
    assert kfgen("render", example, "--out", out).code == 0
    assert prove(example, out) is not None
    for file in cache_dir().rglob("*.json"):  # a corrupted cache is no proof, and no obstacle
        file.write_bytes(b"garbage")
    assert prove(example, out) is not None
    tfjob = out / "rendered/prod/training-operator/ml/tfjob-iris.yaml"
    original = tfjob.read_text()

    def refuted(change, undo) -> None:
        change()
        assert prove(example, out) is None
        assert kfgen("check", example, "--out", out, "--names-only").code == 1
        undo()
        assert prove(example, out) is not None

    same_size = original.replace("backoffLimit: 3", "backoffLimit: 4")
    refuted(lambda: tfjob.write_text(same_size), lambda: tfjob.write_text(original))
    refuted(lambda: (out / "rendered/prod/extra.yaml").write_text("kind: Extra\n"), (out / "rendered/prod/extra.yaml").unlink)
    refuted(tfjob.unlink, lambda: tfjob.write_text(original))
    record = (out / "provenance.json").read_text()
    forged = json.loads(record)
    forged["files"]["rendered/prod/training-operator/ml/tfjob-iris.yaml"] = "sha256:" + "0" * 64
    refuted(lambda: (out / "provenance.json").write_text(json.dumps(forged, indent=2) + "\n"),
            lambda: (out / "provenance.json").write_text(record))
    stack_text = example.read_text()
    refuted(lambda: edit(example, 'args: [--steps, "200"]', 'args: [--steps, "300"]'), lambda: example.write_text(stack_text))
    tfjob.touch()  # new stat data, the same bytes: read again, still proven
    assert prove(example, out) is not None
    full = kfgen("check", example, "--out", out, "--full")
    assert (full.code, full.out) == (0, f"{out}: up to date with {example}\n")
