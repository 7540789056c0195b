"""Load a stack file into plain data plus the line and column of every key and value.

YAML 1.2 (the core schema: `yes` and `on` are strings, `0o17` is octal). Documents are composed by
libyaml (PyYAML's C parser) with a YAML 1.2 resolver, 30x faster than ruamel.yaml's pure-Python
composer; a document libyaml refuses, or one that asks for another YAML version (`%YAML`), is
composed by ruamel.yaml instead, whose messages say what is wrong.

Hardened for untrusted input: only regular files (no FIFOs or devices), a size cap, UTF-8 only,
no tabs in indentation, one document, no duplicate keys, only the plain YAML tags, a cap on
nesting depth, and caps on the nodes and on the bytes that aliases expand to (a "billion laughs"
file, or one long string aliased many times, is refused after a bounded walk, not after filling
memory).
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

try:
    import yaml.cyaml

    CParser: Any = getattr(yaml.cyaml, "CParser")
except ImportError:  # a PyYAML built without libyaml: ruamel.yaml composes everything
    CParser = None

from kfgen.errors import InputError, Problem

MAX_BYTES = 1024 * 1024  # one input file
MAX_NODES = 200_000  # nodes of one document, aliases expanded
MAX_EXPANDED_BYTES = 16 * 1024 * 1024  # text of its scalars, aliases expanded
MAX_DEPTH = 100  # nesting of mappings and lists

Path_ = tuple[str | int, ...]

_TAG = "tag:yaml.org,2002:"


@dataclass
class Document:
    """Plain data of one YAML file and where each part of it was written."""

    file: str
    data: Any
    values: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    numbers: dict[Path_, str] = field(default_factory=dict)  # the text of every number as written (1.30, read as 1.3)

    def position(self, path: Path_, *, key: bool = False) -> tuple[int, int]:
        """Line and column (1-based) of `path`, or of its nearest written ancestor."""
        path = tuple(path)
        while True:
            table = self.keys if key and path in self.keys else self.values
            if path in table:
                return table[path]
            if not path:
                return (1, 1)
            path = path[:-1]
            key = False

    def text_at(self, path: Path_) -> str | None:
        """How a number at `path` was written, when it was one."""
        return self.numbers.get(tuple(path))

    def problem(self, path: Path_, message: str, *, key: bool = False) -> Problem:
        line, col = self.position(path, key=key)
        return Problem(self.file, line, col, format_path(path), message)


def format_path(path: Path_) -> str:
    """`('spec', 'steps', 2, 'name')` -> `spec.steps[2].name`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def read_input(path: Path, display: str, limit: int = MAX_BYTES) -> bytes:
    """The bytes of a regular input file of at most `limit` bytes, or one clear InputError. A FIFO or
    a device is refused before it is read (opening does not block, nothing is read from it)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise InputError(Problem(display, 1, 1, "", "file not found")) from None
    except IsADirectoryError:
        raise InputError(Problem(display, 1, 1, "", "is a directory, expected a YAML file")) from None
    except OSError as exc:
        raise InputError(Problem(display, 1, 1, "", f"cannot read: {exc.strerror}")) from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise InputError(Problem(display, 1, 1, "", "is a directory, expected a YAML file"))
        if not stat.S_ISREG(info.st_mode):
            raise InputError(Problem(display, 1, 1, "", "not a regular file (a FIFO, socket or device); refused"))
        data = handle.read(limit + 1)  # never more than the limit, whatever the file claims
    if len(data) > limit:
        raise InputError(Problem(display, 1, 1, "", f"file is over the {limit}-byte limit"))
    return data


def load_bytes(raw: bytes, display: str) -> Document:
    """Parse YAML bytes holding one document (see module docstring for what is refused)."""
    nodes = _compose(raw, display)
    if not nodes:
        raise InputError(Problem(display, 1, 1, "", "the file is empty, expected a mapping"))
    if len(nodes) > 1:
        mark = nodes[1].start_mark
        raise InputError(Problem(display, mark.line + 1, 1, "", "expected one YAML document, found several"))
    return _Converter(display).document(nodes[0])


def load_documents(raw: bytes, display: str) -> list[Document]:
    """Parse YAML bytes holding any number of documents (manifests), with the same refusals and one
    budget of nodes and bytes for the whole file."""
    converter = _Converter(display)
    documents = []
    for node in _compose(raw, display):
        converter.doc = Document(display, None)
        documents.append(converter.document(node))
    return documents


def _compose(raw: bytes, display: str) -> list:
    if len(raw) > MAX_BYTES:
        raise InputError(Problem(display, 1, 1, "", f"file is {len(raw)} bytes, over the {MAX_BYTES}-byte limit"))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise InputError(Problem(display, line, col, "", "not valid UTF-8 (save the file as UTF-8)")) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    _refuse_tabs(text, display)
    if CParser is not None and "%YAML" not in text:
        try:
            return _compose_with_libyaml(text)
        except (yaml.YAMLError, RecursionError):
            pass  # ruamel.yaml says what is wrong (and composes what libyaml alone refuses)
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        nodes = list(YAML(typ="rt").compose_all(text))
    except RecursionError:
        raise InputError(_too_deep(text, display)) from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        reason = (exc.problem or exc.context or "invalid YAML").strip()
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise InputError(Problem(display, line, col, "", f"invalid YAML: {reason}")) from None
    except YAMLError as exc:
        raise InputError(Problem(display, 1, 1, "", f"invalid YAML: {exc}")) from None
    return [n for n in nodes if n is not None]


class _Yaml12Resolver(yaml.resolver.BaseResolver):
    """Implicit types of plain scalars as ruamel.yaml reads YAML 1.2 (the core schema, with `_` in
    numbers, `0b` binary, dates kept as text by the converter); tests hold the two to the same tags."""


for _tag_name, _pattern, _first in [
    ("bool", r"true|True|TRUE|false|False|FALSE", "tTfF"),
    ("float", r"""[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
              |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
              |[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?
              |[-+]?\.(?:inf|Inf|INF)
              |\.(?:nan|NaN|NAN)""", "-+0123456789."),
    ("int", r"""[-+]?0b[0-1_]+
              |[-+]?0o?[0-7_]+
              |[-+]?[0-9_]+
              |[-+]?0x[0-9a-fA-F_]+""", "-+0123456789"),
    ("merge", r"<<", "<"),
    ("null", r"~|null|Null|NULL|", ["~", "n", "N", ""]),
    ("timestamp", r"""[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
              |[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?
               (?:[Tt]|[ \t]+)[0-9][0-9]?
               :[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?
               (?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?""", "0123456789"),
    ("value", r"=", "="),
    ("yaml", r"!|&|\*", "!&*"),
]:
    _Yaml12Resolver.add_implicit_resolver(_TAG + _tag_name, re.compile(f"^(?:{_pattern})$", re.X), list(_first))


def _compose_with_libyaml(text: str) -> list:
    composer = _Yaml12Composer(text)
    try:
        nodes = []
        while composer.check_node():
            nodes.append(composer.get_node())
        return [n for n in nodes if n is not None]
    finally:
        composer.dispose()


if CParser is not None:
    class _Yaml12Composer(CParser, _Yaml12Resolver):  # type: ignore[misc,valid-type]
        def __init__(self, text: str):
            CParser.__init__(self, text)
            _Yaml12Resolver.__init__(self)


def _too_deep(text: str, display: str) -> Problem:
    """Where the text nests deeper than MAX_DEPTH (found by scanning tokens, which does not recurse)."""
    depth = 0
    opening = (yaml.BlockMappingStartToken, yaml.BlockSequenceStartToken, yaml.FlowMappingStartToken, yaml.FlowSequenceStartToken)
    closing = (yaml.BlockEndToken, yaml.FlowMappingEndToken, yaml.FlowSequenceEndToken)
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):  # the pure-Python scanner: libyaml stops at 1000 levels
            depth += isinstance(token, opening) - isinstance(token, closing)
            if depth > MAX_DEPTH:
                mark = token.start_mark
                return Problem(display, mark.line + 1, mark.column + 1, "", f"nested deeper than {MAX_DEPTH} levels; refused")
    except yaml.YAMLError:
        pass
    return Problem(display, 1, 1, "", f"nested deeper than {MAX_DEPTH} levels; refused")


def _refuse_tabs(text: str, display: str) -> None:
    for number, line in enumerate(text.splitlines(), 1):
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        if "\t" in indent:
            raise InputError(Problem(display, number, indent.index("\t") + 1, "", "tab in indentation; YAML indents with spaces"))


def _tag(node: Any) -> str:
    tag = node.tag
    return str(getattr(tag, "value", tag) or "")


class _Converter:
    """Turn a composed node graph into plain data, recording positions and collecting problems."""

    def __init__(self, display: str):
        self.doc = Document(display, None)
        self.problems: list[Problem] = []
        self.budget = MAX_NODES
        self.bytes_budget = MAX_EXPANDED_BYTES

    def document(self, root: Any) -> Document:
        self.doc.data = self.value(root, ())
        if self.problems:
            raise InputError(self.problems)
        return self.doc

    def _at(self, node: Any, path: Path_, message: str) -> None:
        self.problems.append(Problem(self.doc.file, node.start_mark.line + 1, node.start_mark.column + 1, format_path(path), message))

    def value(self, node: Any, path: Path_) -> Any:
        # nodes of libyaml (PyYAML) or ruamel.yaml: both say what they are in `id`
        self.budget -= 1
        if node.id == "scalar":
            self.bytes_budget -= len(node.value)
        if self.budget < 0 or self.bytes_budget < 0:
            what = f"{MAX_NODES} nodes" if self.budget < 0 else f"{MAX_EXPANDED_BYTES} bytes of text"
            self._refuse(node, path, f"document expands to more than {what} (aliases); refused")
        if len(path) > MAX_DEPTH:
            self._refuse(node, path[:3], f"nested deeper than {MAX_DEPTH} levels; refused")
        self.doc.values.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if node.id == "mapping":
            return self.mapping(node, path)
        if node.id == "sequence":
            if _tag(node) not in (_TAG + "seq", "!", ""):
                self._at(node, path, f"unsupported YAML tag {_tag(node)!r}")
            return [self.value(item, path + (i,)) for i, item in enumerate(node.value)]
        return self.scalar(node, path)

    def _refuse(self, node: Any, path: Path_, message: str) -> None:
        """Stop at once: the rest of the document is not worth walking."""
        self.problems = [Problem(self.doc.file, node.start_mark.line + 1, node.start_mark.column + 1, format_path(path), message)]
        raise InputError(self.problems)

    def mapping(self, node: Any, path: Path_) -> dict:
        if _tag(node) not in (_TAG + "map", "!", ""):
            self._at(node, path, f"unsupported YAML tag {_tag(node)!r}")
        out: dict = {}
        seen: dict[Any, int] = {}
        merged: dict = {}
        for key_node, value_node in node.value:
            if _tag(key_node) == _TAG + "merge":
                merged.update(self._merge_source(value_node, path))
                continue
            if key_node.id != "scalar":
                self._at(key_node, path, "mapping keys must be plain scalars")
                continue
            key = self.scalar(key_node, path)
            if not isinstance(key, str):
                key = str(key_node.value)
            if key in seen:
                self._at(key_node, path + (key,), f"duplicate key {key!r} (first on line {seen[key]})")
                continue
            seen[key] = key_node.start_mark.line + 1
            self.doc.keys[path + (key,)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            out[key] = self.value(value_node, path + (key,))
        for key, value in merged.items():
            out.setdefault(key, value)
        return out

    def _merge_source(self, node: Any, path: Path_) -> dict:
        sources = node.value if node.id == "sequence" else [node]
        merged: dict = {}
        for source in sources:
            if source.id != "mapping":
                self._at(source, path, "a merge key (<<) needs a mapping or a list of mappings")
                continue
            for key, value in self.mapping(source, path).items():
                merged.setdefault(key, value)
        return merged

    def scalar(self, node: Any, path: Path_) -> Any:
        tag, text = _tag(node), node.value
        if tag in (_TAG + "str", "!"):
            return text
        if tag == _TAG + "null":
            return None
        if tag == _TAG + "bool":
            return text.lower() == "true"
        try:
            if tag in (_TAG + "int", _TAG + "float"):
                self.doc.numbers[path] = text
            if tag == _TAG + "int":
                return _parse_int(text)
            if tag == _TAG + "float":
                return _parse_float(text)
        except ValueError:
            kind = "an integer" if tag.endswith("int") else "a number"
            self._at(node, path, f"{text!r} is not {kind}; quote it if it is text")
            return None
        if tag == _TAG + "timestamp":
            return text  # dates stay the text that was written
        self._at(node, path, f"unsupported YAML tag {tag!r}; only plain strings, numbers, booleans, lists and mappings are allowed")
        return None


def _parse_int(text: str) -> int:
    clean = text.replace("_", "")
    sign = -1 if clean.startswith("-") else 1
    digits = clean.lstrip("+-")
    if digits.startswith("0o"):
        return sign * int(digits[2:], 8)
    if digits.startswith("0x"):
        return sign * int(digits[2:], 16)
    if digits.startswith("0b"):
        return sign * int(digits[2:], 2)
    return sign * int(digits, 10)


def _parse_float(text: str) -> float:
    lowered = text.lower().replace("_", "")
    if lowered.lstrip("+-") in (".inf", ".nan"):
        return float(lowered.replace(".", ""))
    return float(lowered)
