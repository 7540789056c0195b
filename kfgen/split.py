"""The hydrated result: kustomize's output for one environment, one object per file, plain YAML.

rendered/<env>/<base>/<namespace|cluster>/<kind>-<name>.yaml, where <base> is the object's
kfgen.io/component label (the base it came from); this is what Argo CD syncs.

Most objects are the same in every environment, so each distinct document of kustomize's output
(by its text) is parsed, dumped and placed once per render, whatever the number of environments.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass

import yaml

from kfgen.layout import object_path
from kfgen.objects import Obj
from kfgen.vocabulary import COMPONENT_LABEL, RENDERED
from kfgen.yamlio import dump, load, load_all

UNOWNED = "other"
_SEPARATOR = re.compile(r"^---[ \t]*\n", re.MULTILINE)


def owner(obj: Obj) -> str:
    return ((obj.get("metadata") or {}).get("labels") or {}).get(COMPONENT_LABEL) or UNOWNED


@dataclass
class Document:
    """One object as kfgen writes it: its file's text and digest, and where it goes."""

    obj: Obj
    text: str
    digest: str
    owner: str
    path: str  # <namespace|cluster>/<kind>-<name>.yaml
    grouped: str  # the same with the API group, for two kinds of one name

    @classmethod
    def of(cls, obj: Obj) -> Document:
        text = dump(obj)
        return cls(obj, text, "sha256:" + hashlib.sha256(text.encode()).hexdigest(), owner(obj), object_path(obj),
                   object_path(obj, with_group=True))


class Documents:
    """kustomize's documents, each distinct text parsed and dumped once."""

    def __init__(self) -> None:
        self._by_text: dict[str, Document | None] = {}

    def of_text(self, text: str) -> Document | None:
        """The object of one YAML document (None when it holds no object)."""
        if text not in self._by_text:
            obj = load(text)
            self._by_text[text] = Document.of(obj) if isinstance(obj, dict) else None
        return self._by_text[text]

    def split(self, env: str, stream: str) -> list[tuple[str, Document]]:
        """(path under the output folder, document) of every object of one environment's build, in file order."""
        try:
            documents = [d for chunk in _SEPARATOR.split(stream) if chunk.strip() for d in [self.of_text(chunk)] if d]
        except yaml.YAMLError:  # not one document per chunk after all: read the stream whole
            documents = [Document.of(o) for o in load_all(stream) if isinstance(o, dict)]
        by_owner: dict[str, list[Document]] = {}
        for document in documents:
            by_owner.setdefault(document.owner, []).append(document)
        files = []
        for base, owned in sorted(by_owner.items()):
            counts = Counter(d.path for d in owned)
            clashes = {p for p, n in counts.items() if n > 1}  # two kinds of one name from different API groups
            files += [(f"{RENDERED}/{env}/{base}/{d.grouped if d.path in clashes else d.path}", d) for d in owned]
        return files

