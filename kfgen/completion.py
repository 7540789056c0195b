"""Shell completion (click's mechanism): commands and options come with click, stack files with the
shell's own file completion; this module adds what only the stack knows: environment names (every
`--env`, promote's `--from` and `--to`), training job names (`--job`), model names (`--model`) and
field paths for `kfgen explain`.

Enable it once per shell: `eval "$(_KFGEN_COMPLETE=bash_source kfgen)"` (zsh_source, fish_source).
Completion never fails loudly: a stack that cannot be read completes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import click
from click.shell_completion import CompletionItem

from kfgen.load import load_bytes, read_input

Completer = Callable[[click.Context, click.Parameter, str], list[CompletionItem]]


def _stack_data(ctx: click.Context) -> dict:
    """The stack named on the command line so far (or ./stack.yaml), as plain data; {} when unreadable."""
    # while an option waits for its value, click leaves the arguments before it unparsed, in ctx.args
    given = [Path(a) for a in ctx.args if not a.startswith("-") and Path(a).is_file()]
    path = ctx.params.get("stack") or (given[0] if given else Path("stack.yaml"))
    try:
        data = load_bytes(read_input(Path(path), str(path)), str(path)).data
    except Exception:  # completion must not fail: a broken stack completes nothing
        return {}
    return data if isinstance(data, dict) else {}


def _names(*keys: str) -> Completer:
    def complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
        value: Any = _stack_data(ctx)
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        names = sorted(value) if isinstance(value, dict) else []
        return [CompletionItem(n) for n in names if isinstance(n, str) and n.startswith(incomplete)]

    return complete


def complete_field(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """`spec.envi` -> `spec.environments`: the fields below the path typed so far (map entries as `*`)."""
    from kfgen.schema import _resolve, schema_at

    parent, _, last = incomplete.rpartition(".")
    try:
        _, schema = schema_at(parent)
    except KeyError:
        return []
    fields = list(schema.get("properties", {}))
    if not fields and isinstance(schema.get("additionalProperties"), dict):
        fields = ["*"]
    if not fields and isinstance(schema.get("items"), dict):
        fields = list(_resolve(schema["items"]).get("properties", {}))
    prefix = f"{parent}." if parent else ""
    return [CompletionItem(prefix + f) for f in fields if f.startswith(last)]


COMPLETERS: dict[str, Completer] = {
    "env_name": _names("spec", "environments"),
    "source": _names("spec", "environments"),  # kfgen promote --from
    "target": _names("spec", "environments"),  # kfgen promote --to
    "job_name": _names("spec", "workloads", "training"),
    "model_name": _names("spec", "workloads", "serving"),
    "field": complete_field,
}


def add_completions(command: click.Command) -> None:
    """Give every parameter named in COMPLETERS, in `command` and below, its completion (click keeps a
    parameter's `shell_complete` in `_custom_shell_complete`; setting it here keeps the commands'
    definitions as they are)."""
    for param in command.params:
        if param.name in COMPLETERS and getattr(param, "_custom_shell_complete", None) is None:
            param._custom_shell_complete = COMPLETERS[param.name]
    for sub in getattr(command, "commands", {}).values():
        add_completions(sub)
