"""The one place that turns data into YAML text (and reads rendered YAML back).

Output is canonical: apiVersion, kind, metadata first, every other key sorted, multi-line strings
as literal blocks, no line wrapping, a trailing newline. Same data, same bytes.

The text is libyaml's (PyYAML's C emitter). Emitting it through PyYAML's Python representer costs
about 0.3 ms per object, so `dump` writes the block structure itself and asks libyaml only for the
form of each distinct scalar (how it quotes it), once per process; anything it does not know how
to place (a key that is not a simple key, a top-level scalar) goes through PyYAML whole. A test
holds the two to the same bytes on random documents.
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
        keys = _ordered(value, top)
        return {k: canonical(value[k], top=False) for k in keys}
    if isinstance(value, (list, tuple)):
        return [canonical(v, top=False) for v in value]
    return value


def _ordered(value: dict, top: bool) -> list:
    keys = sorted(value, key=str)
    if top:
        keys = [k for k in _FIRST if k in value] + [k for k in keys if k not in _FIRST]
    return keys


def pyyaml_dump(value: Any) -> str:
    """One YAML document, canonical, through PyYAML's representer (the reference `dump` is held to)."""
    return yaml.dump(canonical(value), Dumper=_CanonicalDumper, default_flow_style=False, sort_keys=False,
                     allow_unicode=True, width=1 << 20)


def dump(value: Any) -> str:
    """One YAML document, canonical."""
    lines: list[str] = []
    try:
        if type(value) is dict and value:
            _mapping(value, 0, "", lines, True)
        elif type(value) in _SEQUENCES and value:
            _sequence(value, 0, "", lines)
        else:
            return pyyaml_dump(value)
    except _Unplaced:
        return pyyaml_dump(value)
    lines.append("")
    return "\n".join(lines)


_SEQUENCES = (list, tuple)
_BREAKS = frozenset("\r\x85\u2028\u2029")  # line breaks to YAML besides \n


class _Unplaced(Exception):
    """A scalar the block writer does not place itself; PyYAML dumps the whole document."""


# value -> (its text after `key: ` or `- `, lines of a literal block under it at two spaces, or None)
_VALUE_FORMS: dict[tuple[type, Any], tuple[str, list[str] | None]] = {}
_KEY_FORMS: dict[tuple[type, Any], str] = {}


def _form_key(value: Any) -> tuple[type, Any]:
    """Equal keys, equal text: 1, 1.0 and True differ by type, 0.0 and -0.0 (and NaNs) by their repr."""
    kind = type(value)
    return (kind, repr(value)) if kind is float else (kind, value)


def _value_form(value: Any) -> tuple[str, list[str] | None]:
    key = _form_key(value)
    form = _VALUE_FORMS.get(key)
    if form is None:
        text = pyyaml_dump({"k": value})
        first, _, rest = text.partition("\n")
        if not first.startswith("k: ") or (rest and not first.startswith("k: |")) or _BREAKS.intersection(text):
            raise _Unplaced()  # a multi-line quoted scalar: its folding depends on where it sits
        body = rest.split("\n")[:-1] if rest else None
        if body is not None and not all(line == "" or line.startswith("  ") for line in body):
            raise _Unplaced()
        form = (first[3:], body)
        _VALUE_FORMS[key] = form
    return form


def _key_form(key: Any) -> str:
    cache_key = _form_key(key)
    form = _KEY_FORMS.get(cache_key)
    if form is None:
        text = pyyaml_dump({key: 0})
        if not text.endswith(": 0\n") or text.count("\n") != 1 or text.startswith("? ") or _BREAKS.intersection(text):
            raise _Unplaced()  # a key that is not a simple key (multi-line, long)
        form = text[:-4]
        _KEY_FORMS[cache_key] = form
    return form


def _scalar(value: Any, indent: int, head: str, lines: list[str]) -> None:
    """`head` followed by the scalar (its literal block, if any, indented under `indent`)."""
    if value is None:
        lines.append(head + "null")
        return
    kind = type(value)
    if kind is dict or kind in _SEQUENCES:  # empty: flow style
        lines.append(head + ("{}" if kind is dict else "[]"))
        return
    if kind is not str and kind is not int and kind is not bool and kind is not float:
        raise _Unplaced()
    text, body = _value_form(value)
    lines.append(head + text)
    if body:
        pad = " " * indent
        lines.extend(pad + line if line else line for line in body)


def _mapping(value: dict, indent: int, first: str, lines: list[str], top: bool = False) -> None:
    pad = " " * indent
    head = first
    for key in _ordered(value, top):
        item = value[key]
        line = head + _key_form(key) + ":"
        head = pad
        kind = type(item)
        if kind is dict and item:
            lines.append(line)
            _mapping(item, indent + 2, " " * (indent + 2), lines)
        elif kind in _SEQUENCES and item:
            lines.append(line)
            _sequence(item, indent, pad, lines)
        else:
            _scalar(item, indent, line + " ", lines)


def _sequence(value: list | tuple, indent: int, first: str, lines: list[str]) -> None:
    pad = " " * indent
    head = first
    for item in value:
        line = head + "- "
        head = pad
        kind = type(item)
        if kind is dict and item:
            _mapping(item, indent + 2, line, lines)
        elif kind in _SEQUENCES and item:
            _sequence(item, indent + 2, line, lines)
        else:
            _scalar(item, indent, line, lines)


def dump_all(values: Iterable[Any]) -> str:
    """Several documents separated by `---`."""
    return "---\n".join(dump(v) for v in values)


def load_all(text: str) -> list[Any]:
    """Documents of a YAML stream (rendered manifests: trusted, produced by kustomize or kfgen)."""
    return [d for d in yaml.load_all(text, Loader=_Loader) if d is not None]


def load(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)
