"""The stack's JSON Schema: validation with located, readable messages, and field docs for `explain`."""

from __future__ import annotations

import copy
import difflib
import json
import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from kfgen.errors import Problem
from kfgen.jsonschemas import Schema
from kfgen.load import Document
from kfgen.shipped import shipped_dir

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError

_TYPE_WORDS = {"string": "a string", "integer": "an integer", "number": "a number", "boolean": "true or false",
               "object": "a mapping", "array": "a list", "null": "null"}


@cache
def stack_schema() -> dict:
    """The stack's schema: schemas/stack.schema.json, whose component definitions come from the
    component packages (their settings and supported versions), so the packages are the one source."""
    schema = json.loads((shipped_dir("schemas") / "stack.schema.json").read_text())
    schema["$defs"].update(component_definitions())
    return schema


def component_definitions() -> dict[str, dict]:
    """`$defs/component.<name>` of every component: the settings all share, its own, its versions."""
    from kfgen.components import PACKAGES

    common = json.loads((Path(__file__).parent / "components" / "component.schema.json").read_text())["properties"]
    out = {}
    for name, package in PACKAGES.items():
        properties = dict(common)
        versions = [r.version for r in package.releases]
        properties["version"] = {**common["version"], "description": f"{common['version']['description']} Default {versions[0]}.",
                                 "enum": versions, "default": versions[0]}
        properties["namespace"] = {**common["namespace"], "description": f"{common['namespace']['description']} "
                                   f"Default `{package.namespace}`.", "default": package.namespace}
        properties.update(package.settings_schema["properties"])
        out[f"component.{name}"] = {"type": "object", "description": package.settings_schema["description"],
                                    "additionalProperties": False, "properties": properties}
    return out


def schema_text() -> str:
    """The stack's schema as kfgen writes it (schemas/stack.schema.json, `kfgen schema`, `kfgen init`)."""
    return json.dumps(stack_schema(), indent=2, ensure_ascii=False) + "\n"


def write_schema(path: Path) -> bool:
    """Write the stack's schema (component definitions regenerated) to `path`; True when it changed."""
    text = schema_text()
    if path.is_file() and path.read_text() == text:
        return False
    path.write_text(text)
    return True


if __name__ == "__main__":  # python -m kfgen.schema: regenerate schemas/stack.schema.json after changing a component package
    target = Path(__file__).resolve().parents[1] / "schemas" / "stack.schema.json"
    print(f"{target}: {'rewritten' if write_schema(target) else 'up to date'}")


@cache
def _validator() -> Schema:
    return Schema(stack_schema())


def schema_problems(doc: Document) -> list[Problem]:
    """Every schema violation of the document, one located problem each."""
    problems: list[Problem] = []
    for error in _validator().iter_errors(doc.data):
        problems.extend(explain_error(doc, error))
    return problems


_STRING_RULES = ("pattern", "enum", "minLength", "maxLength", "const")


def checked_document(doc: Document) -> tuple[list[Problem], Any]:
    """The schema's problems of a stack, and the data the cross-field rules can still check: the
    document with every wrong value it can do without left out (an unknown key, a wrong optional
    value; a wrong string where one is required is kept as it is, for the rules to ignore). None when
    the document is too broken for that (a required key missing, a wrong name, the wrong kind of
    value where one is required): then the schema's problems are all there is to say."""
    errors = list(_validator().iter_errors(doc.data))
    problems = [p for error in errors for p in explain_error(doc, error)]
    if not errors:
        return problems, doc.data
    data = copy.deepcopy(doc.data)
    for error in errors:
        path = list(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = _resolve(error.schema if isinstance(error.schema, dict) else {}).get("properties", {})
            holder = _at(data, path)
            for key in set(error.instance) - set(allowed):
                if isinstance(holder, dict):
                    holder.pop(key, None)
            continue
        if error.validator in ("required", "minProperties", "maxProperties") or "propertyNames" in error.schema_path:
            return problems, None
        while path and isinstance(path[-1], int):  # a wrong list item: the whole list goes
            path.pop()
        if len(path) < 2:
            return problems, None
        parent, key = _at(data, path[:-1]), path[-1]
        if not isinstance(parent, dict) or key not in parent:
            continue  # already left out
        if key in _schema_of(path[:-1]).get("required", []):
            if isinstance(parent[key], str) and error.validator in _STRING_RULES and list(error.absolute_path) == path:
                continue  # kept: the rules see an unknown name, whose problem is this one
            return problems, None
        del parent[key]
    if next(_validator().iter_errors(data), None) is not None:
        return problems, None
    return problems, data


def _at(data: Any, path: list) -> Any:
    for part in path:
        data = data[part]
    return data


def _schema_of(path: list) -> dict:
    """The resolved schema of the value at a document path of a stack."""
    schema = _resolve(stack_schema())
    for part in path:
        if isinstance(part, int):
            schema = _resolve(schema.get("items") or {})
        elif part in schema.get("properties", {}):
            schema = _resolve(schema["properties"][part])
        else:
            schema = _resolve(schema["additionalProperties"]) if isinstance(schema.get("additionalProperties"), dict) else {}
    return schema


def nullable_branch(schema: dict) -> dict | None:
    """The value's own schema of a field that also accepts null (`anyOf: [<schema>, {type: null}]`)."""
    branches = schema.get("anyOf") if isinstance(schema, dict) else None
    if isinstance(branches, list) and len(branches) == 2 and {"type": "null"} in branches:
        return next(b for b in branches if b != {"type": "null"})
    return None


def is_nullable(schema: dict) -> bool:
    """Whether null is accepted (it unsets the field)."""
    kind = schema.get("type")
    return nullable_branch(schema) is not None or (isinstance(kind, list) and "null" in kind)


def _resolve(schema: dict) -> dict:
    """Follow $ref, single-allOf and nullable anyOf wrappers to the schema that holds properties."""
    root = stack_schema()
    while True:
        if (branch := nullable_branch(schema)) is not None:
            schema = {**{k: v for k, v in schema.items() if k != "anyOf"}, **{k: v for k, v in branch.items() if k != "description"},
                      "nullable": True}
            continue
        if "$ref" in schema:
            target = root
            for part in schema["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}  # the field's own description wins
            continue
        if "allOf" in schema and len(schema["allOf"]) == 1 and "properties" not in schema:
            inner = schema["allOf"][0]
            schema = {**_resolve(inner), **{k: v for k, v in schema.items() if k != "allOf"},
                      "required": schema.get("required", []) + _resolve(inner).get("required", [])}
            continue
        return schema


def explain_error(doc: Document, error: ValidationError) -> Iterator[Problem]:
    path = tuple(error.absolute_path)
    kind = error.validator
    schema = error.schema if isinstance(error.schema, dict) else {}
    if kind == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(_resolve(schema).get("properties", {}))
        for key in sorted(set(error.instance) - set(allowed), key=str):
            hint = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
            suffix = f" (did you mean {hint[0]!r}?)" if hint else (f" (expected one of: {', '.join(allowed)})" if allowed else "")
            yield doc.problem(path + (key,), f"unknown key {key!r}{suffix}", key=True)
        return
    if kind == "required":
        missing = str(error.message).split("'")[1] if "'" in error.message else error.message
        yield doc.problem(path, f"missing required key {missing!r}")
        return
    if "propertyNames" in error.schema_path:
        name = error.instance
        rule = schema.get("description") if schema.get("pattern") else None  # a pattern of its own, described there
        if rule and "DNS-1123" not in rule:
            yield doc.problem(path + (name,), f"{name!r} is not a valid name: expected {_first_sentence(rule)}", key=True)
        else:
            yield doc.problem(path + (name,), f"{name!r} is not a valid name: use lowercase letters, digits and '-', "
                              "starting and ending with a letter or digit, at most 63 characters (DNS-1123 label)", key=True)
        return
    if kind == "enum":
        options = [str(o) for o in error.validator_value]
        # a hint for a misspelt word, not for a version number that is simply unsupported
        wordy = any(c.isalpha() for c in str(error.instance))
        hint = difflib.get_close_matches(str(error.instance), options, n=1, cutoff=0.6) if wordy else []
        suffix = f" (did you mean {hint[0]!r}?)" if hint else ""
        yield doc.problem(path, f"{error.instance!r} is not one of: {', '.join(options)}{suffix}")
        return
    if kind == "anyOf" and (branch := nullable_branch(schema)) is not None:
        index = schema["anyOf"].index(branch)  # null was not given: explain why the value fails its own schema
        for sub in sorted(error.context or [], key=lambda e: list(e.absolute_path)):
            if sub.relative_schema_path and sub.relative_schema_path[0] == index:
                yield from explain_error(doc, sub)
        return
    if kind == "type":
        expected = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        words = " or ".join(_TYPE_WORDS.get(str(t), str(t)) for t in expected)
        yield doc.problem(path, f"expected {words}, got {_describe(error.instance)}{_hint(doc, path, error.instance, expected)}")
        return
    if kind in ("minimum", "maximum") and isinstance(error.instance, (int, float)):
        bound = "too small: at least" if kind == "minimum" else "too large: at most"
        yield doc.problem(path, f"{error.instance!r} is {bound} {error.validator_value}")
        return
    if kind == "const":
        yield doc.problem(path, f"expected {error.validator_value!r}, got {_describe(error.instance)}")
        return
    if kind == "pattern":
        description = schema.get("description") or f"a value matching {error.validator_value}"
        yield doc.problem(path, f"{error.instance!r} is not valid: expected {_first_sentence(description)}")
        return
    yield doc.problem(path, error.message)


def _hint(doc: Document, path: tuple, value: Any, expected: list) -> str:
    """What to write instead, where the value is a common YAML surprise."""
    if value is None:
        return " (null unsets only optional fields without a default)"
    if "string" in expected and isinstance(value, (int, float)) and not isinstance(value, bool):
        written = doc.text_at(path) or str(value)
        if written != str(value):
            return f" (YAML reads {written} as the number {value}): quote it, \"{written}\""
        return f": quote it, \"{written}\""
    return ""


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _first_sentence(text: str) -> str:
    sentence = re.split(r"(?<!e\.g)(?<!i\.e)\.\s", text)[0].rstrip(".")
    return sentence[0].lower() + sentence[1:] if sentence else sentence


# --- explain ---------------------------------------------------------------------------------


def schema_at(dotted: str) -> tuple[str, dict]:
    """The schema of a dotted field path (`spec.environments.prod.accelerators`); map keys match any name."""
    schema = _resolve(stack_schema())
    walked: list[str] = []
    parts = dotted.split(".") if dotted else []
    if any(not p for p in parts):
        raise KeyError(f"{dotted!r} has an empty part; write the field's path with single dots, e.g. spec.environments.prod.cloud")
    for part in parts:
        props = schema.get("properties", {})
        if part in props:
            schema = _resolve(props[part])
        elif isinstance(schema.get("additionalProperties"), dict):
            names = schema.get("propertyNames") or {}
            pattern = _resolve(names).get("pattern") if names else None
            if pattern and not re.match(pattern, part) and part != "*" and not (part.startswith("<") and part.endswith(">")):
                raise KeyError(f"{'.'.join(walked)}: {part!r} cannot be a name there (names are like {_example_name(walked)}); "
                               f"use any valid name, or * (e.g. {'.'.join(walked)}.*)")
            schema = _resolve(schema["additionalProperties"])
        elif isinstance(schema.get("items"), dict) and (part == "*" or part.isdigit()):
            schema = _resolve(schema["items"])  # a list's item by index
        elif isinstance(schema.get("items"), dict) and part in _resolve(schema["items"]).get("properties", {}):
            schema = _resolve(_resolve(schema["items"])["properties"][part])  # a field of the list's items
        else:
            return _descend_missing(walked, part, _resolve(schema["items"]) if isinstance(schema.get("items"), dict) else schema)
        walked.append(part)
    return ".".join(walked), schema


def _example_name(walked: list[str]) -> str:
    return "prod" if walked[-1:] == ["environments"] else "my-name"


def _descend_missing(walked: list[str], part: str, schema: dict) -> tuple[str, dict]:
    options = sorted(schema.get("properties", {}))
    hint = difflib.get_close_matches(part, options, n=1, cutoff=0.6)
    where = ".".join(walked) or "the stack"
    if not options:
        kind = _type_name(schema)
        raise KeyError(f"{where} is {'an' if kind[0] in 'aeiou' else 'a'} {kind} value, with no fields: {part!r} is not one")
    message = f"{where} has no field {part!r}"
    if hint:
        message += f" (did you mean {hint[0]!r}?)"
    elif options:
        message += f"; its fields: {', '.join(options)}"
    raise KeyError(message)


def describe_schema(path: str, schema: dict) -> str:
    """Human-readable docs of one field and its direct children."""
    lines = [f"FIELD: {path or '(stack)'}", f"TYPE: {_type_name(schema)}"]
    if "default" in schema:
        lines.append(f"DEFAULT: {json.dumps(schema['default'])}")
    if "enum" in schema:
        lines.append(f"ONE OF: {', '.join(map(str, schema['enum']))}")
    lines += ["", schema.get("description", "")]
    children = schema.get("properties", {})
    if not children and isinstance(schema.get("additionalProperties"), dict):
        inner = _resolve(schema["additionalProperties"])
        if inner.get("properties"):
            lines += ["", "ENTRIES (by name) HAVE FIELDS:"]
            children = inner["properties"]
            schema = inner
    elif children:
        lines += ["", "FIELDS:"]
    required = set(schema.get("required", []))
    for name in children:
        child = _resolve(children[name])
        flag = " (required)" if name in required else ""
        lines.append(f"  {name} <{_type_name(child)}>{flag}")
        lines.append(f"      {_first_sentence(child.get('description', '')) or '-'}")
    return "\n".join(lines).rstrip() + "\n"


def _type_name(schema: dict) -> str:
    if schema.get("nullable"):
        return _type_name({k: v for k, v in schema.items() if k != "nullable"}) + "|null"
    if "enum" in schema:
        return "enum"
    if "const" in schema:
        return f"const {schema['const']}"
    kind = schema.get("type", "object" if "properties" in schema else "any")
    if isinstance(kind, list):
        return "|".join(kind)
    if kind == "object" and "additionalProperties" in schema and isinstance(schema["additionalProperties"], dict):
        return "map of name -> " + _type_name(_resolve(schema["additionalProperties"]))
    if kind == "array" and isinstance(schema.get("items"), dict):
        return "list of " + _type_name(_resolve(schema["items"]))
    return kind
