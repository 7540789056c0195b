"""`kfgen components`: the components, their supported upstream versions and, on request, every declared
deviation from upstream's install with its reason (the same text the README shows)."""

from __future__ import annotations

from kfgen.components import PACKAGES


def components_table(deviations: bool = False) -> str:
    """A Markdown table of the components (default version first); with `deviations`, one table per component."""
    lines = ["| component | key | default version | supported | upstream install |", "|---|---|---|---|---|"]
    for package in PACKAGES.values():
        versions = ", ".join(r.version for r in package.releases)
        lines.append(f"| {package.title} | `{package.name}` | {package.default_version} | {versions} | "
                     f"{_upstream_kind(package.releases[0].upstream)} |")
    if deviations:
        for package in PACKAGES.values():
            lines += ["", f"{package.title} (`{package.name}`): {len(package.deviations)} deviations", "",
                      "| object | field | why |", "|---|---|---|"]
            for d in package.deviations:
                name = f"{d.kind}/{d.name}" + (f" (upstream: {d.upstream_name})" if d.upstream_name else "")
                only = f" (only {', '.join(d.versions)})" if d.versions else ""
                lines.append(f"| {name} | `{d.field}` | {d.reason.replace('|', '/')}{only} |")
    return "\n".join(lines) + "\n"


def _upstream_kind(path: str) -> str:
    if path.endswith("/chart"):
        return "Helm chart"
    return "manifests" if not path.endswith(".yaml") else f"`{path.rsplit('/', 1)[-1]}`"
