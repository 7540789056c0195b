"""kfgen/yamlio.py: `dump` writes exactly the bytes PyYAML's representer writes (libyaml is the oracle)."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from kfgen.yamlio import dump, load, pyyaml_dump

# Text that exercises quoting: indicators, YAML 1.1 look-alikes, spaces at the ends, line breaks, unicode.
TRICKY = ["", " ", "yes", "No", "on", "~", "null", "1", "0o17", "017", "1e3", "1_000", "1:30", ".inf", "-", "- x", "? x", ": x",
          "a: b", "a #b", "#x", "&a", "*a", "!t", "|", ">", "'q'", '"q"', "%p", "@x", "`x", "{x}", "[x]", "a,b", "2024-10-07",
          "=", "<<", "x\n", "x\ny", "\nx", "x\n\n", " x\ny", "x \ny", "\t", "x\ty", "é", "\u2028", "\x85", "\ufeff", "a\x00b",
          "0x1F", "+1", "-.5", "Yes please", "x" * 200, "multi\nline\n  indented\n"]
scalars = (st.sampled_from(TRICKY) | st.text(max_size=12) | st.integers() | st.booleans() | st.none()
           | st.floats(allow_nan=False) | st.sampled_from([float("inf"), float("-inf")]))
keys = st.sampled_from(["apiVersion", "kind", "metadata", "spec", *TRICKY[:40]]) | st.text(max_size=8) | st.integers()
documents = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5), max_leaves=30)


@settings(max_examples=600, deadline=None)
@given(documents)
def test_dump_is_byte_identical_to_pyyaml(value):
    assert dump(value) == pyyaml_dump(value)


def test_nested_blocks_and_literals():
    value = {"kind": "X", "apiVersion": "v1", "metadata": {"name": "a"},
             "spec": {"l": [{"a": 1, "b": [1, [2, {"c": "x\ny\n"}]]}, [[5, "s\n"], 6], "x\ny\n", {}, []], "t": "  lead\nx",
                      "u": "ünï", "f": 1.0e20, "k": {"x y": 1, 1: 2}, "tuple": (1, (2, 3)), "long": "k" * 300}}
    assert dump(value) == pyyaml_dump(value)
    assert load(dump(value))["spec"]["l"][1] == [[5, "s\n"], 6]
    assert dump(value).startswith("apiVersion: v1\nkind: X\nmetadata:\n  name: a\nspec:\n")


def test_what_the_block_writer_leaves_to_pyyaml():
    for value in ({"k" * 200: 1}, {"a\nb": 1}, "top\nstring\n", 5, {}, [], {"x": "a\n\n b  \n c"}):
        assert dump(value) == pyyaml_dump(value)
