"""The environment overlay: leaf-level JSON 6902 operations that turn the base into the environment."""

from __future__ import annotations

import copy

from hypothesis import given, settings
from hypothesis import strategies as st

from kfgen.envpatch import environment_overlay, json_patch

KEYS = st.sampled_from(["a", "b", "c", "x/y", "t~1", "labels", "spec"])
LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=4), st.sampled_from(["1", 1, 1.0, True]))
DOCS = st.recursive(LEAVES, lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(KEYS, children, max_size=4)),
                    max_leaves=25)


def apply_patch(doc, ops):
    """A small JSON 6902 (add/remove/replace) interpreter, to check what json_patch promises."""
    doc = copy.deepcopy(doc)
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        if not parts:
            doc = copy.deepcopy(op["value"])
            continue
        parent = doc
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        last = parts[-1]
        if isinstance(parent, list):
            parent[int(last)] = copy.deepcopy(op["value"])
        elif op["op"] == "remove":
            del parent[last]
        else:
            parent[last] = copy.deepcopy(op["value"])
    return doc


@settings(max_examples=300, deadline=None)
@given(DOCS, DOCS)
def test_the_patch_turns_old_into_new(old, new):
    ops = json_patch(old, new)
    assert apply_patch(old, ops) == new and type(apply_patch(old, ops)) is type(new)
    assert json_patch(new, new) == []


def test_operations_are_leaf_level_so_components_keep_their_additions():
    old = {"spec": {"replicas": 1, "template": {"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}}}
    new = {"spec": {"replicas": 3, "template": {"resources": {"limits": {"cpu": "2", "memory": "1Gi"}}}}}
    assert json_patch(old, new) == [{"op": "replace", "path": "/spec/replicas", "value": 3},
                                    {"op": "replace", "path": "/spec/template/resources/limits/cpu", "value": "2"}]


def test_added_and_removed_objects():
    def obj(name, replicas=1):
        return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "ns"}, "spec": {"replicas": replicas}}
    overlay = environment_overlay({"app": [obj("kept"), obj("dropped")]}, {"app": [obj("kept", 2), obj("new")]})
    assert overlay.deleted == [("apps/v1", "Deployment", "ns", "dropped")]
    assert [o["metadata"]["name"] for _, o in overlay.added] == ["new"]
    assert overlay.patches == {("apps/v1", "Deployment", "ns", "kept"): [{"op": "replace", "path": "/spec/replicas", "value": 2}]}
