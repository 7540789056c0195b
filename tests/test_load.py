"""kfgen/load.py: hostile and broken YAML gives one located problem, fast, never a traceback."""

from __future__ import annotations

import time

import pytest

from kfgen.errors import InputError
from kfgen.load import MAX_BYTES, load_bytes


def problems(text: str | bytes) -> list[str]:
    raw = text.encode() if isinstance(text, str) else text
    with pytest.raises(InputError) as info:
        load_bytes(raw, "stack.yaml")
    return info.value.lines()


def test_positions_of_keys_and_values():
    doc = load_bytes(b"a:\n  b: [1, 2]\n  c: x\n", "s.yaml")
    assert doc.data == {"a": {"b": [1, 2], "c": "x"}}
    assert doc.position(("a", "c")) == (3, 6)
    assert doc.position(("a", "c"), key=True) == (3, 3)
    assert doc.position(("a", "b", 1)) == (2, 10)
    assert doc.position(("a", "missing", "deeper")) == (2, 3)  # nearest written ancestor


def test_duplicate_keys_are_all_reported():
    assert problems("a: 1\nb: 2\na: 3\nb: 4\n") == [
        "stack.yaml:3:1: a: duplicate key 'a' (first on line 1)",
        "stack.yaml:4:1: b: duplicate key 'b' (first on line 2)",
    ]


def test_tab_indentation():
    assert problems("a:\n\tb: 1\n") == ["stack.yaml:2:1: tab in indentation; YAML indents with spaces"]


def test_not_utf8():
    assert problems(b"a: 1\nb: caf\xe9\n") == ["stack.yaml:2:7: not valid UTF-8 (save the file as UTF-8)"]


@pytest.mark.parametrize("tag", ["!!python/object:os.system", "!!python/name:os.system", "!custom", "!!binary", "!!set"])
def test_unsafe_and_unknown_tags(tag):
    lines = problems(f"spec:\n  x: {tag} abc\n")
    assert len(lines) == 1 and lines[0].startswith("stack.yaml:2:6: spec.x: unsupported YAML tag")


def test_alias_bomb_is_refused_fast():
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)},"
        f" *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n" for i in range(8))
    start = time.perf_counter()
    lines = problems(bomb)
    assert time.perf_counter() - start < 2
    assert len(lines) == 1 and "expands to more than 200000 nodes (aliases); refused" in lines[0]


def test_size_cap():
    assert problems(b"a: " + b"x" * MAX_BYTES) == [f"stack.yaml:1:1: file is {MAX_BYTES + 3} bytes, over the {MAX_BYTES}-byte limit"]


def test_syntax_error_has_its_position():
    assert problems("a: [1, 2\nb: 3\n") == ["stack.yaml:2:2: invalid YAML: expected ',' or ']', but got ':'"]


def test_one_document_only():
    assert problems("a: 1\n---\nb: 2\n") == ["stack.yaml:3:1: expected one YAML document, found several"]


def test_empty_file():
    assert problems("# nothing\n") == ["stack.yaml:1:1: the file is empty, expected a mapping"]


def test_merge_keys_and_yaml12_scalars():
    doc = load_bytes(b"base: &b {x: 1, y: 2}\nc:\n  <<: *b\n  y: 3\nn: 0o17\nh: 0x1F\nt: yes\nd: 2024-10-07\nz: ~\n", "s.yaml")
    assert doc.data["c"] == {"x": 1, "y": 3}
    assert (doc.data["n"], doc.data["h"], doc.data["t"], doc.data["d"], doc.data["z"]) == (15, 31, "yes", "2024-10-07", None)


def test_nesting_is_capped_where_it_happens():
    flow = "a: " + "[" * 2000 + "]" * 2000 + "\n"  # deeper than the parser can recurse
    assert problems(flow) == ["stack.yaml:1:103: nested deeper than 100 levels; refused"]
    block = "a:\n" + "".join("  " * i + "k:\n" for i in range(1, 150)) + "  " * 150 + "x: 1\n"
    assert problems(block) == ["stack.yaml:102:203: a.k.k: nested deeper than 100 levels; refused"]


def test_aliases_that_grow_in_bytes_are_refused():
    text = 'a: &a "' + "x" * 60_000 + '"\nb: [' + ", ".join(["*a"] * 400) + "]\n"  # 400 nodes, 24 MB of text
    assert problems(text) == ["stack.yaml:1:4: b[278]: document expands to more than 16777216 bytes of text (aliases); refused"]


@pytest.mark.parametrize("value, message", [
    ("!!int x", "'x' is not an integer; quote it if it is text"),
    ("!!float x", "'x' is not a number; quote it if it is text"),
])
def test_explicit_tags_that_do_not_parse_are_located(value, message):
    assert problems(f"spec:\n  n: {value}\n") == [f"stack.yaml:2:6: spec.n: {message}"]


def test_binary_integers_are_read():
    assert load_bytes(b"n: 0b101\n", "s.yaml").data == {"n": 5}


# --- libyaml and ruamel.yaml read the same documents the same way ------------------------------

def _both(raw: bytes, monkeypatch) -> tuple:
    """(data, positions) or the problem lines, composed by libyaml (as kfgen does) and by ruamel.yaml.
    Two known differences are set aside: ruamel.yaml marks where a folded scalar (>) folded with a BEL
    character inside the text (libyaml gives the text YAML defines), and places an empty value at the
    start of the next line (libyaml: right after its key, where it was left out)."""
    import kfgen.load as load

    results = []
    for parser in (load.CParser, None):
        monkeypatch.setattr(load, "CParser", parser)
        try:
            doc = load_bytes(raw, "s.yaml")
            values = {path: at for path, at in doc.values.items() if _get(doc.data, path) is not None}
            results.append((repr(doc.data).replace("\\x07", ""), values, doc.keys))
        except InputError as exc:
            results.append(exc.lines())
    return tuple(results)


def _get(data, path):
    for part in path:
        data = data[part]
    return data


def test_an_empty_value_is_placed_after_its_key():
    doc = load_bytes(b"a:\nb: 1\n", "s.yaml")
    assert (doc.data, doc.position(("a",))) == ({"a": None, "b": 1}, (1, 3))


SCALARS = ["yes", "No", "on", "off", "y", "~", "null", "Null", "NULL", "", "1", "-1", "+1", "017", "0o17", "0o18", "0x1F", "0b101",
           "1_000", "1:30", "1.5", "-.5", ".5", "1e3", "1E-3", "1.", "1.e3", ".inf", "-.Inf", ".NaN", "=", "<<", "2024-10-07",
           "2024-1-7 10:00:00", "2024-10-07T10:00:00Z", "true", "True", "TRUE", "tRue", "0.1.2", "v1", "1Gi", "!", "&", "*",
           "'1'", '"yes"', "! 12", "!!str 1", "!!int 12", "!!float 1", "!!bool true", "!!null ''", "|\n  x\n", ">\n  x\n  y\n"]


@pytest.mark.parametrize("scalar", SCALARS)
def test_libyaml_reads_each_scalar_as_ruamel_yaml_does(scalar, monkeypatch):
    raw = f"a: {scalar}\nb: [{scalar if chr(10) not in scalar else 'x'}]\n".encode()
    fast, reference = _both(raw, monkeypatch)
    assert fast == reference


def test_libyaml_reads_the_examples_and_the_mutation_corpus_as_ruamel_yaml_does(monkeypatch):
    from conftest import ROOT
    from test_hardening import ATTACKS, mutants

    texts = [p.read_text() for p in sorted(ROOT.glob("stacks/*/stack.yaml"))]
    texts += [p.read_text() for p in sorted(ROOT.glob("overlays/*/*.yaml")) + sorted(ROOT.glob("stacks/*/profiles/*/*.yaml"))]
    example = texts[0]
    texts += [example.replace(old, new, 1) for _, old, new in ATTACKS] + [t for _, t in mutants(example, seed=15, count=150)]
    texts += ["a: &x {b: 1}\nc:\n  <<: [*x, {d: 2}]\n  b: 3\n", "a: [1, 2\n", "a: 'x\n", "- a\nb: 1\n", "%YAML 1.1\n---\na: yes\n",
              "a: {b: 1, b: 2}\n", "? [a]\n: 1\n", "a: !custom x\n", "x: 'multi\n  line'\n", "k: |2\n   x\n"]
    for text in texts:
        fast, reference = _both(text.encode(), monkeypatch)
        assert fast == reference, text[:200]
