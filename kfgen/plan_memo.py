"""Environment plans kept between renders of one stack, so that a change to one environment plans
that environment only.

A plan memo is kfgen.plan's EnvironmentPlan of each environment, by the digest of everything it
reads (kfgen.plan.environment_keys), kept in kfgen's cache for this build of kfgen only. An entry is
the value planning those inputs gives, so using it changes no byte of the output (the seeded-edits
test of kfgen.render holds incremental renders to full ones); an unreadable or misshapen record is
ignored and the environments are planned again. One record per stack file, holding the plans of its
last render only: it does not grow with every edit.
"""

from __future__ import annotations

import os
from pathlib import Path

from kfgen import cache
from kfgen.plan import EnvironmentPlan
from kfgen.record import build_digest


class PlanMemo(dict):
    """The memo of the stack at `stack_path` (empty when the cache holds none for this kfgen build, or
    without `recall`); `save()` keeps what the last plan used and added."""

    def __init__(self, stack_path: Path, recall: bool = True):
        super().__init__()
        self.name = cache.key("plans", os.path.realpath(stack_path))
        self.used: set[str] = set()
        self.added = False
        data = cache.read("plans", self.name) if recall else None
        if isinstance(data, dict) and data.get("build") == build_digest() and isinstance(data.get("plans"), dict):
            for key, entry in data["plans"].items():
                if _well_formed(entry):
                    super().__setitem__(key, entry)
        self.loaded = set(self)

    def __contains__(self, key: object) -> bool:
        self.used.add(key)  # type: ignore[arg-type]
        return super().__contains__(key)

    def __setitem__(self, key: str, value: dict) -> None:
        self.used.add(key)
        self.added = True
        super().__setitem__(key, value)

    def save(self) -> None:
        """Keep the plans the last plan used (those of the stack's environments now), when they changed."""
        if self.added or self.used != self.loaded:
            cache.write("plans", self.name, {"build": build_digest(), "plans": {k: self[k] for k in sorted(self.used) if k in self}})


def _well_formed(entry: object) -> bool:
    """An entry EnvironmentPlan.from_data can read, holding text files and placements of four strings."""
    try:
        plan = EnvironmentPlan.from_data(entry)  # type: ignore[arg-type]
    except (KeyError, TypeError, AttributeError, ValueError):
        return False
    return (all(isinstance(p, str) and isinstance(t, str) for p, t in plan.overrides.items())
            and all(len(p) == 4 and all(isinstance(s, str) for s in p) for ps in plan.placements.values() for p in ps)
            and all(isinstance(i, int) for i in plan.waivers))
