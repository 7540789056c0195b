"""The stack's JSON Schema: validation with located, readable messages, and field docs for `explain`."""

from __future__ import annotations

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


def _resolve(schema: dict) -> dict:
    """Follow $ref and single-allOf wrappers to the schema that holds properties."""
    root = stack_schema()
    while True:
        if "$ref" in schema:
            target = root
            for part in schema["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            schema = {**target, **{k: v for k, v in schema.items() if k != "$ref" and k != "description"}}
            continue
        if "allOf" in schema and len(schema["allOf"]) == 1 and "properties" not in schema:
            inner = schema["allOf"][0]
            schema = {**{k: v for k, v in schema.items() if k != "allOf"}, **_resolve(inner),
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
    if kind == "type":
        expected = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        words = " or ".join(_TYPE_WORDS.get(str(t), str(t)) for t in expected)
        yield doc.problem(path, f"expected {words}, got {_describe(error.instance)}")
        return
    if kind == "const":
        yield doc.problem(path, f"expected {error.validator_value!r}, got {_describe(error.instance)}")
        return
    if kind == "pattern":
        description = schema.get("description") or f"a value matching {error.validator_value}"
        yield doc.problem(path, f"{error.instance!r} is not valid: expected {_first_sentence(description)}")
        return
    yield doc.problem(path, error.message)


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
    for part in [p for p in dotted.split(".") if p]:
        props = schema.get("properties", {})
        if part in props:
            schema = _resolve(props[part])
        elif isinstance(schema.get("additionalProperties"), dict):
            schema = _resolve(schema["additionalProperties"])
        elif schema.get("type") == "array" and isinstance(schema.get("items"), dict):
            schema = _resolve(schema["items"])
            if part not in ("*",) and not part.isdigit():
                return _descend_missing(walked, part, schema)
            walked.append(part)
            continue
        else:
            return _descend_missing(walked, part, schema)
        walked.append(part)
    return ".".join(walked), schema


def _descend_missing(walked: list[str], part: str, schema: dict) -> tuple[str, dict]:
    options = sorted(schema.get("properties", {}))
    hint = difflib.get_close_matches(part, options, n=1, cutoff=0.6)
    where = ".".join(walked) or "the stack"
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
