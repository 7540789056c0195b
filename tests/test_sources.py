"""kfgen/sources.py: the files a stack references are inputs too, under the same rules as the stack.
Each test is what a hostile or careless pull request would contain, and asserts one located line,
exit 2 and nothing written; the same rules hold in every command that reads the stack."""

from __future__ import annotations

import os

import pytest
from conftest import edit

EXTRA = "      namespace: kubeflow\n"  # where the tests hang extraResources (on the training operator)


def reference(example, entry: str) -> tuple[int, int]:
    """Add `extraResources: [entry]` to the example; returns the line and column of the entry."""
    edit(example, EXTRA, f"{EXTRA}      extraResources: [{entry}]\n")
    line = example.read_text().splitlines().index(f"      extraResources: [{entry}]") + 1
    return line, 24


def quota(name: str = "ml") -> str:
    return f"apiVersion: v1\nkind: ResourceQuota\nmetadata: {{name: {name}, namespace: ml}}\nspec: {{hard: {{pods: '50'}}}}\n"


@pytest.mark.parametrize("command", ["validate", "render"])
def test_a_fifo_is_refused_without_reading_it(kfgen, example, tmp_path, command):
    os.mkfifo(example.parent / "quota.yaml")
    line, col = reference(example, "quota.yaml")
    run = kfgen(command, example, *(["--out", tmp_path / "out"] if command == "render" else []))
    assert (run.code, run.err) == (2, f"{example}:{line}:{col}: spec.components.training-operator.extraResources[0]: "
                                      "'quota.yaml': not a regular file (a FIFO, socket or device); refused\n")
    assert not (tmp_path / "out").exists()


def test_a_device_behind_a_symlink_is_refused(kfgen, example):
    (example.parent / "zero.yaml").symlink_to("/dev/zero")
    line, col = reference(example, "zero.yaml")
    run = kfgen("validate", example, "--allow-outside-repo")
    assert (run.code, run.err) == (2, f"{example}:{line}:{col}: spec.components.training-operator.extraResources[0]: "
                                      "'zero.yaml': not a regular file (a FIFO, socket or device); refused\n")


def test_a_file_over_the_size_cap_is_refused(kfgen, example):
    (example.parent / "quota.yaml").write_text(quota() + "# " + "x" * (1024 * 1024) + "\n")
    line, col = reference(example, "quota.yaml")
    run = kfgen("validate", example)
    assert (run.code, run.err) == (2, f"{example}:{line}:{col}: spec.components.training-operator.extraResources[0]: "
                                      "'quota.yaml': file is over the 1048576-byte limit\n")


def test_symlinks_in_a_referenced_folder_may_not_leave_the_repository(kfgen, example, tmp_path):
    secret = tmp_path / "secret.yaml"
    secret.write_text(quota("stolen"))
    folder = example.parent / "manifests"
    folder.mkdir()
    (folder / "quota.yaml").write_text(quota())
    (folder / "sneaky.yaml").symlink_to(secret)
    line, col = reference(example, "manifests")
    run = kfgen("validate", example)
    assert (run.code, run.err) == (2, f"{example}:{line}:{col}: spec.components.training-operator.extraResources[0]: 'manifests' "
                                      f"(sneaky.yaml) is a symlink that leaves the stack's repository ({example.parent}); "
                                      "pass --allow-outside-repo to allow it\n")
    assert kfgen("validate", example, "--allow-outside-repo").code == 0  # said in writing, on the command line


def test_a_symlinked_folder_inside_a_referenced_folder_is_refused(kfgen, example):
    folder = example.parent / "manifests"
    (folder / "real").mkdir(parents=True)
    (folder / "real" / "quota.yaml").write_text(quota())
    (folder / "loop").symlink_to(folder, target_is_directory=True)
    line, col = reference(example, "manifests")
    run = kfgen("validate", example)
    assert (run.code, run.err) == (2, f"{example}:{line}:{col}: spec.components.training-operator.extraResources[0]: 'manifests' "
                                      "holds a symlink to a folder (loop); reference its target instead\n")


def test_a_folder_written_with_dot_slash_is_rendered_not_dropped(kfgen, example, tmp_path):
    (example.parent / "manifests").mkdir()
    (example.parent / "manifests" / "quota.yaml").write_text(quota())
    reference(example, "./manifests")
    assert kfgen("render", example, "--out", tmp_path / "out").code == 0
    assert (tmp_path / "out" / "rendered" / "dev" / "training-operator" / "ml" / "resourcequota-ml.yaml").is_file()
    assert (tmp_path / "out" / "base" / "training-operator" / "extra" / "manifests" / "quota.yaml").is_file()


@pytest.mark.parametrize("content, where, message", [
    (b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: caf\xe9}\n", "3:21", "not valid UTF-8 (save the file as UTF-8)"),
    (b"apiVersion: v1\nkind: [ConfigMap\n", "3:1", "invalid YAML: expected ',' or ']', but got '<stream end>'"),
    (b"apiVersion: v1\nkind: ConfigMap\nmetadata: {namespace: ml}\n", "3:11", "metadata: the object needs metadata.name (a string)"),
    (b"- just\n- a list\n", "1:1", "expected a Kubernetes object (a mapping with apiVersion, kind and metadata.name)"),
    (b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: !!python/object:os.system x\n", "4:7",
     "data: unsupported YAML tag 'tag:yaml.org,2002:python/object:os.system'; only plain strings, numbers, booleans, lists and "
     "mappings are allowed"),
])
def test_your_manifests_are_read_under_the_stacks_rules(kfgen, example, content, where, message):
    (example.parent / "mine.yaml").write_bytes(content)
    reference(example, "mine.yaml")
    run = kfgen("validate", example)
    assert (run.code, run.err) == (2, f"{example.parent / 'mine.yaml'}:{where}: {message}\n")


def test_a_patch_that_is_no_patch_is_refused(kfgen, example):
    (example.parent / "patch.yaml").write_text("- {op: replace, value: 1}\n")
    edit(example, EXTRA, f"{EXTRA}      patches:\n        - path: patch.yaml\n          target: {{kind: Deployment}}\n")
    run = kfgen("validate", example)
    assert (run.code, run.err) == (2, f"{example.parent / 'patch.yaml'}:1:3: [0]: expected a JSON 6902 operation: op (add, remove, "
                                      "replace, move, copy, test) and path\n")


def test_init_never_writes_through_a_symlink(kfgen, tmp_path):
    target = tmp_path / "victim.txt"
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "stack.yaml").symlink_to(target)  # dangling: exists() says no
    run = kfgen("init", tmp_path / "new")
    assert (run.code, run.err) == (2, f"{tmp_path / 'new' / 'stack.yaml'}: already exists; kfgen init does not overwrite it\n")
    assert not target.exists()


def test_an_output_that_cannot_be_written_is_one_line(kfgen, example, tmp_path):
    (tmp_path / "a-file").write_text("not a folder\n")
    run = kfgen("render", example, "--out", tmp_path / "a-file" / "out")
    assert (run.code, run.err) == (2, f"{tmp_path / 'a-file' / 'out'}: {tmp_path / 'a-file'} is a file, not a folder; choose another "
                                      "output folder\n")
    assert (tmp_path / "a-file").read_text() == "not a folder\n"
