"""JSON Schema (2020-12) checks: jsonschema-rs answers whether a document is valid, jsonschema says why.

jsonschema-rs is compiled: about 16 us for a Deployment where jsonschema takes 5 ms, and importing
it costs nothing noticeable where jsonschema costs 40 ms. Only a document it finds invalid is walked
again, by jsonschema, whose messages and error paths are kfgen's wording (so the wording never
changes with the fast path). Where jsonschema-rs is not installed, or does not take a schema,
jsonschema does it all. Tests hold the two to the same answer on the stack, the profiles and every
rendered object, valid and broken.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, Iterator

_rs: Any
try:
    import jsonschema_rs as _rs
except ImportError:  # jsonschema-rs is a dependency; kfgen still works without it
    _rs = None

_REGISTRIES: dict[str, Any] = {}  # jsonschema-rs registries of shared definitions, by their $id


class Schema:
    """A schema, and `definitions` (a document of $defs its $refs point into, with an $id)."""

    def __init__(self, schema: dict, definitions: dict | None = None):
        self.schema = schema
        self.definitions = definitions
        self.fast = None
        if _rs is not None:
            try:
                self.fast = _rs.Draft202012Validator(schema, registry=_registry(definitions) if definitions else None)
            except Exception:  # a schema jsonschema-rs does not take: jsonschema alone decides
                self.fast = None

    @cached_property
    def slow(self) -> Any:
        from jsonschema import Draft202012Validator
        from referencing import Registry, Resource

        if not self.definitions:
            return Draft202012Validator(self.schema)
        return Draft202012Validator(self.schema, registry=Resource.from_contents(self.schema) @ (Resource.from_contents(self.definitions) @ Registry()))

    def is_valid(self, document: Any) -> bool:
        return self.fast.is_valid(document) if self.fast is not None else self.slow.is_valid(document)

    def iter_errors(self, document: Any) -> Iterator[Any]:
        """jsonschema's errors (none for a valid document, without asking jsonschema)."""
        if self.fast is not None and self.fast.is_valid(document):
            return iter(())
        return self.slow.iter_errors(document)


def _registry(definitions: dict) -> Any:
    uri = definitions.get("$id", "")
    if uri not in _REGISTRIES:
        _REGISTRIES[uri] = _rs.Registry([(uri, definitions)])
    return _REGISTRIES[uri]
