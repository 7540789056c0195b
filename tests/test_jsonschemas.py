"""kfgen/jsonschemas.py: jsonschema-rs and jsonschema give the same answer on the stack's schema and the
profiles' (the examples, and the seeded mutation corpus of hostile and careless edits)."""

from __future__ import annotations

from conftest import ROOT
from test_hardening import ATTACKS, mutants

from kfgen.errors import InputError
from kfgen.jsonschemas import Schema
from kfgen.load import load_bytes
from kfgen.profiles import _validator as profile_validator
from kfgen.schema import _validator as stack_validator


def _agree(schema: Schema, document) -> bool:
    assert schema.fast is not None
    return schema.fast.is_valid(document) == (not list(schema.slow.iter_errors(document)))


def test_the_stack_schema_answers_alike():
    example = (ROOT / "stacks/example/stack.yaml").read_text()
    texts = [p.read_text() for p in sorted(ROOT.glob("stacks/*/stack.yaml"))]
    texts += [example.replace(old, new, 1) for _, old, new in ATTACKS] + [t for _, t in mutants(example, seed=7, count=300)]
    checked = invalid = 0
    for text in texts:
        try:
            data = load_bytes(text.encode(), "stack.yaml").data
        except InputError:
            continue
        assert _agree(stack_validator(), data), text[:300]
        checked += 1
        invalid += not stack_validator().is_valid(data)
    assert checked > 150 and invalid > 50


def test_the_profile_schemas_answer_alike():
    for kind in ("clouds", "accelerators"):
        files = sorted(ROOT.glob(f"overlays/{kind}/*.yaml")) + sorted(ROOT.glob(f"stacks/*/profiles/{kind}/*.yaml"))
        assert files
        for file in files:
            data = load_bytes(file.read_bytes(), file.name).data
            for variant in (data, {**data, "unknownKey": 1}, {k: v for k, v in data.items() if k != "name"}, {**data, "name": 7}):
                assert _agree(profile_validator(kind), variant), (file, variant)
