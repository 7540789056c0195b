"""The hydrated result: kustomize's output for one environment, one object per file, plain YAML.

rendered/<env>/<base>/<namespace|cluster>/<kind>-<name>.yaml, where <base> is the object's
kfgen.io/component label (the base it came from); this is what Argo CD syncs.
"""

from __future__ import annotations

from kfgen.layout import assign_paths
from kfgen.objects import Obj
from kfgen.plan import rendered_documents
from kfgen.vocabulary import COMPONENT_LABEL, RENDERED

UNOWNED = "other"


def owner(obj: Obj) -> str:
    return ((obj.get("metadata") or {}).get("labels") or {}).get(COMPONENT_LABEL) or UNOWNED


def split_rendered(env: str, stream: str) -> dict[str, Obj]:
    """{path under the output folder: one object} for one environment's build."""
    by_owner: dict[str, list[Obj]] = {}
    for obj in rendered_documents(stream):
        by_owner.setdefault(owner(obj), []).append(obj)
    files: dict[str, Obj] = {}
    for base, objects in sorted(by_owner.items()):
        for path, obj in assign_paths(objects):
            files[f"{RENDERED}/{env}/{base}/{path}"] = obj
    return files
