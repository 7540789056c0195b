"""The output folder is kfgen's only when it can prove it: a render never replaces its inputs, the
stack's folder or a repository, and never deletes a file it did not write. Each test is the
attack (what a pull request or a careless edit would contain) and asserts the refusal: exit 2, one
line, every file left as it was."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from conftest import edit, git, read_tree

pytestmark = pytest.mark.kustomize  # end to end: renders with the real kustomize


def plant_provenance(folder, files=None):
    """What an attacker plants: kfgen's marker file, empty or forged to list the victims."""
    record = "" if files is None else json.dumps({"generator": "kfgen", "files": {f: "sha256:0" for f in files}})
    (folder / "provenance.json").write_text(record)


def test_gitops_path_dot_with_a_planted_marker_does_not_replace_the_stacks_folder(kfgen, example):
    folder = example.parent
    edit(example, "    path: deploy\n", "    path: .\n")
    plant_provenance(folder)
    before = read_tree(folder)
    run = kfgen("render", example)
    assert run.code == 2
    assert run.err == (f"{folder}: would replace {folder}, an input of this render; choose an output folder inside the "
                       "stack's folder that holds none of its inputs (e.g. deploy)\n")
    assert read_tree(folder) == before


def test_a_forged_marker_listing_the_stack_does_not_help(kfgen, example):
    folder = example.parent
    edit(example, "    path: deploy\n", "    path: .\n")
    plant_provenance(folder, [str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()])
    before = read_tree(folder)
    assert kfgen("render", example).code == 2
    assert read_tree(folder) == before


def test_the_repository_root_and_its_git_are_never_replaced(kfgen, git_repo, example):
    for item in example.parent.iterdir():
        item.rename(git_repo / item.name)
    stack = git_repo / "stack.yaml"
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "platform")
    head = git(git_repo, "rev-parse", "HEAD")
    for out in (git_repo, git_repo / ".git", git_repo.parent):
        run = kfgen("render", stack, "--out", out)
        assert run.code == 2 and len(run.err.splitlines()) == 1, run.err
        assert "an input of this render" in run.err
    assert git(git_repo, "rev-parse", "HEAD") == head
    assert git(git_repo, "status", "--porcelain") == ""


def test_an_output_that_holds_a_repository_is_refused(kfgen, example, tmp_path):
    out = tmp_path / "out"
    (out / "vendor" / ".git").mkdir(parents=True)
    (out / "vendor" / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    plant_provenance(out, ["vendor/.git/HEAD"])
    run = kfgen("render", example, "--out", out)
    assert (run.code, run.err) == (2, f"{out}: holds a .git ({out / 'vendor' / '.git'}); kfgen never replaces a repository\n")
    assert (out / "vendor" / ".git" / "HEAD").is_file()


def test_an_output_inside_or_around_a_referenced_folder_is_refused(kfgen, example):
    folder = example.parent
    (folder / "manifests").mkdir()
    (folder / "manifests" / "quota.yaml").write_text(
        "apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: ml, namespace: ml}\nspec: {hard: {pods: '50'}}\n")
    edit(example, "      namespace: kubeflow\n", "      namespace: kubeflow\n      extraResources: [manifests]\n")
    inside = kfgen("render", example, "--out", folder / "manifests" / "deploy")
    assert (inside.code, inside.err) == (2, f"{folder / 'manifests' / 'deploy'}: is inside {folder / 'manifests'}, an input of "
                                            "this render; choose an output folder outside it\n")
    around = kfgen("render", example, "--out", folder / "manifests")
    assert around.code == 2 and "would replace" in around.err
    assert [p.name for p in (folder / "manifests").iterdir()] == ["quota.yaml"]


def test_files_kfgen_did_not_write_are_never_deleted(kfgen, example, tmp_path):
    out = tmp_path / "out"
    assert kfgen("render", example, "--out", out).code == 0
    (out / "rendered" / "dev" / "NOTES.md").write_text("my notes\n")
    run = kfgen("render", example, "--out", out)
    assert (run.code, run.err) == (2, f"{out}: holds files kfgen did not write (rendered/dev/NOTES.md); a render would delete "
                                      "them: move them out of the folder, or choose another output folder\n")
    assert (out / "rendered" / "dev" / "NOTES.md").read_text() == "my notes\n"


def test_a_folder_without_kfgens_record_is_refused(kfgen, example, tmp_path):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    run = kfgen("render", example, "--out", out)
    assert (run.code, run.err) == (2, f"{out}: not empty and not created by kfgen (no readable provenance.json); choose an "
                                      "empty or new folder\n")
    plant_provenance(out)  # an empty marker proves nothing
    assert kfgen("render", example, "--out", out).err.startswith(f"{out}: not empty and not created by kfgen")
    (out / "provenance.json").write_text('{"generator": "kfgen", "version": "0.1.0"}')  # a record without its files
    run = kfgen("render", example, "--out", out)
    assert (run.code, run.err) == (2, f"{out}: its provenance.json does not list the files kfgen wrote (an older kfgen, or not "
                                      "kfgen): delete the folder (it is generated) and render again\n")
    assert (out / "notes.txt").read_text() == "mine"


def test_stale_and_hand_edited_files_of_kfgen_are_replaced(kfgen, example, tmp_path):
    out = tmp_path / "out"
    assert kfgen("render", example, "--out", out).code == 0
    assert (out / "rendered" / "prod").is_dir()
    record = json.loads((out / "provenance.json").read_text())["files"]
    assert set(record) == {p for p in read_tree(out) if p != "provenance.json"}
    edited = out / "rendered" / "dev" / "argo-workflows" / "argo" / "deployment-argo-server.yaml"
    edited.write_text(edited.read_text().replace("replicas: 1", "replicas: 9"))
    text = example.read_text()
    example.write_text(text[: text.index("    prod:\n")] + text[text.index("\n  workloads:\n") + 1:])  # drop prod
    assert kfgen("render", example, "--out", out).code == 0
    assert not (out / "rendered" / "prod").exists() and not (out / "argocd" / "prod").exists()
    assert "replicas: 1" in edited.read_text()


@pytest.fixture
def small_disk(tmp_path):
    """A 256 KiB tmpfs (root on Linux, as on CI); skipped where mounting is not allowed."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_is_one_line_exit_3_and_leaves_nothing(kfgen, example, small_disk):
    run = kfgen("render", example, "--out", small_disk / "out")
    assert (run.code, run.err) == (3, f"{small_disk / 'out'}: cannot write the render: No space left on device; the previous output "
                                      "is unchanged\n")
    assert list(small_disk.iterdir()) == []


def test_a_read_only_disk_is_one_line_exit_2(kfgen, example, small_disk):
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    run = kfgen("render", example, "--out", small_disk / "out")
    assert (run.code, run.err) == (2, f"{small_disk / 'out'}: cannot write the render: Read-only file system; the previous output is "
                                      "unchanged\n")


def test_leftovers_are_removed_only_when_kfgen_can_prove_they_are_its_own(kfgen, example, tmp_path):
    out = tmp_path / "out"
    interrupted = tmp_path / ".out.kfgen-new-999999"  # a render killed before its swap
    interrupted.mkdir()
    (interrupted / ".kfgen-staging").write_text("kfgen staging of out\n")
    (interrupted / "base").mkdir()
    planted = tmp_path / ".out.kfgen-new-1"  # looks like one by its name only
    planted.mkdir()
    (planted / "notes.txt").write_text("mine\n")
    assert kfgen("render", example, "--out", out).code == 0
    assert not interrupted.exists()
    assert (planted / "notes.txt").read_text() == "mine\n"
    assert not (out / ".kfgen-staging").exists()  # the mark never reaches the output


def test_the_replaced_tree_goes_after_kfgen_answers_hidden_from_git_and_locked_while_it_goes(example, tmp_path):
    from kfgen.render import render
    from kfgen.writer import new_staging

    out = tmp_path / "out"
    render(example, out)
    example.write_text(example.read_text().replace('args: [--steps, "200"]', 'args: [--steps, "201"]'))
    result = render(example, out, remove_previous=False)
    retired = result.retired
    assert retired is not None and retired.folder.parent == tmp_path and (out / "provenance.json").is_file()
    assert (retired.folder / ".gitignore").read_text() == "*\n"  # `git status` right after a render shows nothing
    new_staging(out)  # the next render's sweep of leftovers: not while the remover holds the lock
    assert retired.folder.is_dir()
    retired.remove_after_exit()
    deadline = time.monotonic() + 60
    while retired.folder.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not retired.folder.exists()
