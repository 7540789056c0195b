"""A review for people and machines: text (everything), markdown (a pull-request comment with
Mermaid graphs) and JSON.

The markdown reads top down by impact: which environments change and when they get it, how their
sync changes, a graph of what each changed environment runs and of each changed pipeline, then every
change. Large additions of bulk objects are summarized by kind (their names listed); when a comment
would pass its size limit, the changes that no longer fit are listed by name, never dropped.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

from kfgen.diff import Change, EnvSync, Review, summary
from kfgen.vocabulary import COMPONENT_LABEL, WORKLOAD_LABEL

MARKDOWN_LIMIT = 65_000  # GitHub's comment limit is 65,536 characters
BULK = 20  # an environment adding more bulk objects than this gets them summarized by kind
MAX_ENV_GRAPHS = 8  # environments drawn in "what runs"; the others are named
MAX_PIPELINE_GRAPHS = 6
PIPELINE_KINDS = ("WorkflowTemplate",)


# --- json and text ------------------------------------------------------------------------------

def as_json(review: Review) -> str:
    sync = {env: {"before": b.describe() if b else None, "after": a.describe() if a else None} for env, b, a in review.sync_changes()}
    return json.dumps({"changes": [c.as_json() for c in review.changes], "summary": summary(review.changes), "sync": sync}, indent=2) + "\n"


def as_text(review: Review) -> str:
    """Everything, in impact order: the summary, sync changes, one line per change, then every diff."""
    changes = review.changes
    if not changes:
        return "no changes to the rendered objects or the Argo CD objects\n"
    s = summary(changes)
    lines = [f"{s['removed']} removed, {s['changed']} changed, {s['added']} added"]
    for env, before, after in review.sync_changes():
        lines.append(f"  sync     {env}: {before.describe() if before else '(new)'} -> {after.describe() if after else '(removed)'}")
    for env in sorted({c.env for c in bootstrap_changes(review)}):
        lines.append(f"  admin    {env}: AppProjects or the root Application change; apply argocd/{env}/projects/ and root.yaml by hand")
    lines += [f"  {c.change:8} {c.env}: {c.title}" for c in changes]
    return "\n".join(lines) + "\n\n" + "".join(c.diff for c in changes)


# --- markdown -------------------------------------------------------------------------------------

def as_markdown(review: Review, stack: str, base_ref: str, limit: int = MARKDOWN_LIMIT, title: str | None = None) -> str:
    changes = review.changes
    head = [title or f"### kfgen diff of `{stack}` against `{base_ref}`", ""]
    if not changes:
        return "\n".join(head + ["No changes to the rendered objects or the Argo CD objects."]) + "\n"
    head += _environment_table(review) + _sync_table(review) + _bootstrap_note(review) + what_runs(review) + pipelines(review)
    head.append("#### Changes, by impact")
    head.append("")
    fixed = "\n".join(head) + "\n"
    sections = _sections(review)
    return fixed + _fit(sections, limit - len(fixed), stack, base_ref)


def _environment_table(review: Review) -> list[str]:
    s = summary(review.changes)
    rows = ["| environment | removed | changed | added | reaches it |", "|---|---:|---:|---:|---|"]
    for env, n in s["environments"].items():
        sync = review.new.sync.get(env)
        rows.append(f"| {env} | {n['removed']} | {n['changed']} | {n['added']} | {sync.deploys if sync else 'removed from the stack'} |")
    unchanged = len(set(review.new.objects) - set(s["environments"]))
    if unchanged:
        rows.append(f"\n{unchanged} more environment{'s' if unchanged > 1 else ''} unchanged.")
    return rows + [""]


def _sync_table(review: Review) -> list[str]:
    moved = review.sync_changes()
    if not moved:
        return []
    rows = ["#### How environments sync: changed", "", "| environment | before | after |", "|---|---|---|"]
    for env, before, after in moved:
        rows.append(f"| {env} | {_describe(before, after)} | {_describe(after, before, bold=True)} |")
    return rows + [""]


def bootstrap_changes(review: Review) -> list[Change]:
    """Changes to what an admin applies by hand: AppProjects and root Applications (the root never syncs them)."""
    return [c for c in review.changes if c.area == "argocd" and (c.kind == "AppProject" or c.name.endswith("-root"))]


def _bootstrap_note(review: Review) -> list[str]:
    found = bootstrap_changes(review)
    if not found:
        return []
    envs = sorted({c.env for c in found})
    files = " ".join(f"argocd/{env}/projects/ -f argocd/{env}/root.yaml" for env in envs)
    return [f"**Applied by an Argo CD admin, not by the root:** {len(found)} AppProject or root Application changes "
            f"({', '.join(envs)}). After merging: `kubectl apply -n argocd -f {files}` (paths in the rendered tree).", ""]


def _describe(this: EnvSync | None, other: EnvSync | None, bold: bool = False) -> str:
    if this is None:
        return "(not in the stack)"
    parts = [("syncs " + this.syncs, other is None or this.syncs != other.syncs),
             (f"follows `{this.revision}`", other is None or this.revision != other.revision),
             (f"on {this.destinations}", other is None or this.destinations != other.destinations)]
    return ", ".join(f"**{text}**" if bold and differs else text for text, differs in parts)


@dataclass(frozen=True)
class _Section:
    full: str  # the collapsible section
    line: str  # the change by name, when the full section does not fit
    group: str  # the change by kind, when even the names do not fit


def _sections(review: Review) -> list[_Section]:
    """One section per change, or per environment's summarized bulk additions, in impact order."""
    bulk: dict[str, list[Change]] = {}
    for c in review.changes:
        if c.change == "added" and c.area in ("other", "crd"):
            bulk.setdefault(c.env, []).append(c)
    summarized = {env for env, items in bulk.items() if len(items) > BULK}
    out = []
    for c in review.changes:
        if c.change == "added" and c.area in ("other", "crd") and c.env in summarized:
            if bulk[c.env][0] is c:
                out.append(_bulk_section(c.env, bulk[c.env]))
            continue
        plus, minus = c.counts
        out.append(_Section(f"<details><summary>{c.change}: <code>{c.env}</code> {c.title}</summary>\n\n```diff\n{c.diff}```\n</details>\n\n",
                            f"- {c.change}: `{c.env}` {c.title} (+{plus} -{minus})", f"{c.change}: `{c.env}` {c.kind}"))
    return out


def _bulk_section(env: str, items: list[Change]) -> _Section:
    kinds = Counter(c.kind for c in items)
    table = "\n".join(f"| {kind} | {n} |" for kind, n in sorted(kinds.items()))
    names = "\n".join(f"- {c.title}" for c in items)
    body = (f"<details><summary>added: <code>{env}</code> {len(items)} more objects (summarized)</summary>\n\n"
            f"| kind | added |\n|---|---:|\n{table}\n\n{names}\n\n</details>\n\n")
    by_kind = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    return _Section(body, f"- added: `{env}` {len(items)} more objects ({by_kind})", f"added: `{env}` objects ({by_kind})")


def _fit(sections: list[_Section], room: int, stack: str, base_ref: str) -> str:
    """Full sections while they fit, leaving room to name every other change; then those names
    (counted by kind if even the names do not fit) and a footer saying so. Nothing is left out silently."""
    reserve = 400  # the footer
    rest = [0] * (len(sections) + 1)  # rest[i]: characters to name sections i.. one per line
    for i in range(len(sections) - 1, -1, -1):
        rest[i] = rest[i + 1] + len(sections[i].line) + 1
    text = ""
    for i, section in enumerate(sections):
        last = i == len(sections) - 1
        if len(text) + len(section.full) + (0 if last else rest[i + 1] + reserve) > room:
            break
        text += section.full
    else:
        return text
    remaining = sections[i:]
    listing = "\n".join(s.line for s in remaining) + "\n"
    if len(text) + len(listing) + reserve > room:
        groups = Counter(s.group for s in remaining)
        listing = "\n".join(f"- {group} ({n})" for group, n in groups.items()) + "\n"
    return (text + f"**Not shown in full:** {len(remaining)} of {len(sections)} entries (a comment holds {MARKDOWN_LIMIT:,} "
            f"characters); each is listed here. Run `kfgen diff {stack} --base {base_ref}` for every diff.\n\n" + listing)


# --- Mermaid --------------------------------------------------------------------------------------

CLASSES = ["classDef added fill:#dafbe1,stroke:#1a7f37", "classDef changed fill:#fff8c5,stroke:#9a6700",
           "classDef removed fill:#ffebe9,stroke:#cf222e,stroke-dasharray: 4 3"]


def _label(text: str) -> str:
    return '"' + text.replace('"', "#quot;") + '"'


def what_runs(review: Review) -> list[str]:
    """A graph per changed environment: its Applications and the workloads each runs, coloured by change."""
    changed_envs = sorted({c.env for c in review.changes})
    if not changed_envs:
        return []
    state = {(c.env, c.api_version, c.kind, c.namespace, c.name): c.change for c in review.changes}
    lines = ["#### What runs where (changed environments)", "", "```mermaid", "flowchart LR"]
    ids: dict[tuple, str] = {}

    def node(key: tuple, label: str) -> str:
        if key not in ids:
            ids[key] = f"n{len(ids)}"
            change = state.get(key)
            lines.append(f"  {ids[key]}[{_label(label)}]" + (f":::{change}" if change else ""))
        return ids[key]

    for env in changed_envs[:MAX_ENV_GRAPHS]:
        objects = {**review.old.objects.get(env, {}), **review.new.objects.get(env, {})}
        sync = review.new.sync.get(env) or review.old.sync.get(env)
        lines.append(f"  subgraph {_env_id(env)}[{_label(f'{env}: syncs {sync.syncs}, follows {sync.revision}' if sync else env)}]")
        apps = {}
        for key, o in sorted(objects.items()):
            if o.get("kind") in ("Application", "ApplicationSet") and COMPONENT_LABEL in (o["metadata"].get("labels") or {}):
                base = o["metadata"]["labels"][COMPONENT_LABEL]
                apps[base] = node((env, *key), f"{base} ({o['kind']})")
        for key, o in sorted(objects.items()):
            labels = o["metadata"].get("labels") or {}
            if WORKLOAD_LABEL in labels and o.get("kind") in ("TFJob", "SeldonDeployment", "WorkflowTemplate", "CronWorkflow"):
                target = node((env, *key), f"{o['kind']} {o['metadata']['name']}")
                parent = apps.get(labels.get(COMPONENT_LABEL, ""))
                if parent:
                    lines.append(f"  {parent} --> {target}")
        lines.append("  end")
    lines += [f"  {c}" for c in CLASSES] + ["```", ""]
    hidden = changed_envs[MAX_ENV_GRAPHS:]
    if hidden:
        lines.append(f"Not drawn: {', '.join(hidden)} ({len(hidden)} more changed environments).\n")
    return lines


def _env_id(env: str) -> str:
    return "env_" + env.replace("-", "_")


def pipelines(review: Review) -> list[str]:
    """The DAG of each changed pipeline (a WorkflowTemplate with a dag entrypoint), steps coloured by change;
    one graph per distinct DAG, naming the environments it is in."""
    graphs: dict[str, list[str]] = {}
    for c in review.changes:
        if c.kind not in PIPELINE_KINDS or c.change == "removed":
            continue
        key = (c.api_version, c.kind, c.namespace, c.name)
        new = review.new.objects[c.env][key]
        old = review.old.objects.get(c.env, {}).get(key)
        dag = _dag(new, old, review.old.objects.get(c.env, {}), review.new.objects[c.env])
        if dag:
            graphs.setdefault("\n".join(dag), []).append(f"{c.name}@{c.env}")
    if not graphs:
        return []
    lines = ["#### Changed pipelines", ""]
    for graph, where in list(graphs.items())[:MAX_PIPELINE_GRAPHS]:
        names = sorted({w.split("@")[0] for w in where})
        envs = sorted({w.split("@")[1] for w in where})
        lines += [f"`{', '.join(names)}` in {', '.join(envs)}:", "", "```mermaid", graph, "```", ""]
    if len(graphs) > MAX_PIPELINE_GRAPHS:
        lines.append(f"{len(graphs) - MAX_PIPELINE_GRAPHS} more changed pipeline graphs not drawn.\n")
    return lines


def _tasks(template: dict | None) -> dict[str, dict]:
    if not template:
        return {}
    spec = template.get("spec") or {}
    entry = next((t for t in spec.get("templates") or [] if t.get("name") == spec.get("entrypoint")), None)
    return {t["name"]: t for t in ((entry or {}).get("dag") or {}).get("tasks") or []}


def _step(template: dict, task: dict, objects: dict) -> object:
    """What a task runs: its own template, or the WorkflowTemplate it references (accelerated steps)."""
    ref = task.get("templateRef") or {}
    if ref:
        found = next((o for k, o in objects.items() if k[1] == "WorkflowTemplate" and k[3] == ref.get("name")), None)
        return (task, found and found.get("spec"))
    own = next((t for t in (template.get("spec") or {}).get("templates") or [] if t.get("name") == task.get("template")), None)
    return (task, own)


def _dag(new: dict, old: dict | None, old_objects: dict, new_objects: dict) -> list[str]:
    tasks, before = _tasks(new), _tasks(old)
    if not tasks:
        return []
    lines = ["flowchart LR"]
    ids = {name: f"t{i}" for i, name in enumerate(sorted(set(tasks) | set(before)))}
    for name in sorted(set(tasks) | set(before)):
        if name not in before:
            state = "added"
        elif name not in tasks:
            state = "removed"
        elif _step(new, tasks[name], new_objects) != _step(old or {}, before[name], old_objects):
            state = "changed"
        else:
            state = ""
        lines.append(f"  {ids[name]}[{_label(name)}]" + (f":::{state}" if state else ""))
    for name, task in sorted(tasks.items()):
        for dep in task.get("dependencies") or []:
            lines.append(f"  {ids[dep]} --> {ids[name]}")
    for name, task in sorted(before.items()):
        if name not in tasks:
            for dep in task.get("dependencies") or []:
                if dep in ids:
                    lines.append(f"  {ids[dep]} -.-> {ids[name]}")
    return lines + [f"  {c}" for c in CLASSES]
