"""Shell completion through click's own machinery (what `_KFGEN_COMPLETE=bash_complete kfgen` runs)."""

from __future__ import annotations

import pytest
from click.shell_completion import BashComplete

from kfgen.cli import cli, main


def complete(args: list[str], incomplete: str) -> list[tuple[str, str]]:
    items = BashComplete(cli, {}, "kfgen", "_KFGEN_COMPLETE").get_completions(args, incomplete)
    return [(item.type, item.value) for item in items]


def test_commands_and_subcommands():
    assert complete([], "im") == [("plain", "images")]
    assert complete(["tfjob"], "") == [("plain", "list"), ("plain", "run-local"), ("plain", "tf-config")]


def test_stack_paths_are_the_shells_file_completion():
    assert complete(["render"], "sta") == [("file", "sta")]


@pytest.mark.parametrize("args", [["images", "{stack}", "--env"], ["tfjob", "tf-config", "{stack}", "--env"],
                                  ["tfjob", "run-local", "--env"]])
def test_environment_names_come_from_the_stack(example, monkeypatch, tmp_path, args):
    monkeypatch.chdir(example.parent if "{stack}" not in args else tmp_path)  # without a stack on the line: ./stack.yaml
    assert complete([a.format(stack=example) for a in args], "") == [("plain", "dev"), ("plain", "prod")]
    assert complete([a.format(stack=example) for a in args], "pr") == [("plain", "prod")]


def test_job_names_come_from_the_stack(example):
    assert complete(["tfjob", "run-local", str(example), "--job"], "") == [("plain", "iris"), ("plain", "iris-ps")]
    assert complete(["serve-local", str(example), "--model"], "") == [("plain", "iris")]
    assert complete(["promote", str(example), "--from"], "d") == [("plain", "dev")]


def test_an_unreadable_stack_completes_nothing(tmp_path):
    (tmp_path / "stack.yaml").write_text("spec: [unclosed\n")
    assert complete(["images", str(tmp_path / "stack.yaml"), "--env"], "") == []
    assert complete(["images", str(tmp_path / "missing.yaml"), "--env"], "") == []


def test_explain_completes_field_paths():
    assert complete(["explain"], "spec.env") == [("plain", "spec.environments")]
    assert complete(["explain"], "spec.environments.") == [("plain", "spec.environments.*")]
    assert ("plain", "spec.environments.*.nodeSelection") in complete(["explain"], "spec.environments.*.n")
    assert complete(["explain"], "spec.nope.") == []


def test_the_shell_script(monkeypatch, capsys):
    monkeypatch.setenv("_KFGEN_COMPLETE", "bash_source")
    with pytest.raises(SystemExit) as done:
        main([])
    assert done.value.code == 0
    assert "_KFGEN_COMPLETE=bash_complete" in capsys.readouterr().out
