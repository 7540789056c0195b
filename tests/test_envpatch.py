"""The environment overlay: leaf-level JSON 6902 operations that turn the base into the environment,
checked against the jsonpatch library (RFC 6902), not against kfgen's own reading of the RFC."""

from __future__ import annotations

import copy

import jsonpatch
from hypothesis import given, settings
from hypothesis import strategies as st

from kfgen.envpatch import environment_overlay, json_patch

KEYS = st.sampled_from(["a", "b", "c", "x/y", "t~1", "labels", "spec"])
LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=4), st.sampled_from(["1", 1, 1.0, True]))
DOCS = st.recursive(LEAVES, lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(KEYS, children, max_size=4)),
                    max_leaves=25)


@settings(max_examples=300, deadline=None)
@given(DOCS, DOCS)
def test_the_patch_turns_old_into_new(old, new):
    ops = json_patch(old, new)
    patched = jsonpatch.JsonPatch(ops).apply(copy.deepcopy(old))  # an independent RFC 6902 implementation
    assert patched == new and type(patched) is type(new)
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
