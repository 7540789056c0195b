"""The one place that turns data into YAML text (and reads rendered YAML back).

Output is canonical: apiVersion, kind, metadata first, every other key sorted, multi-line strings
as literal blocks, no line wrapping, a trailing newline. Same data, same bytes.
"""

from __future__ import annotations

from typing import Any, Iterable

import yaml

_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_FIRST = ("apiVersion", "kind", "metadata")


class _CanonicalDumper(_Dumper):  # type: ignore[misc,valid-type]
    pass


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


def _represent_dict(dumper: yaml.SafeDumper, value: dict) -> yaml.MappingNode:
    return dumper.represent_mapping("tag:yaml.org,2002:map", list(value.items()))


_CanonicalDumper.add_representer(str, _represent_str)
_CanonicalDumper.add_representer(dict, _represent_dict)


def canonical(value: Any, top: bool = True) -> Any:
    """A copy with keys in canonical order (top-level manifest fields first, the rest sorted)."""
    if isinstance(value, dict):
        keys = sorted(value, key=str)
        if top:
            keys = [k for k in _FIRST if k in value] + [k for k in keys if k not in _FIRST]
        return {k: canonical(value[k], top=False) for k in keys}
    if isinstance(value, (list, tuple)):
        return [canonical(v, top=False) for v in value]
    return value


def dump(value: Any) -> str:
    """One YAML document, canonical."""
    return yaml.dump(canonical(value), Dumper=_CanonicalDumper, default_flow_style=False, sort_keys=False,
                     allow_unicode=True, width=1 << 20)


def dump_all(values: Iterable[Any]) -> str:
    """Several documents separated by `---`."""
    return "---\n".join(dump(v) for v in values)


def load_all(text: str) -> list[Any]:
    """Documents of a YAML stream (rendered manifests: trusted, produced by kustomize or kfgen)."""
    return [d for d in yaml.load_all(text, Loader=_Loader) if d is not None]


def load(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)
