"""Environment plans kept between renders (kfgen.plan's memo, kfgen.plan_memo's record of it): an
environment is planned again exactly when what it reads changed, and a plan from the memo is the plan
itself. Plan level, in memory (the end-to-end proof is tests/test_hydrate.py's seeded edits)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from conftest import ROOT
from in_memory import sources_of
from kfgen import cache
from kfgen.plan import plan
from kfgen.plan_memo import PlanMemo
from kfgen.validate import build_stack

sys.path.insert(0, str(ROOT / "bench"))
from stacks import environments_stack, one_environment_edit  # noqa: E402


class CountingMemo(dict):
    """A memo that says which environments' plans were added (planned) rather than found."""

    def __init__(self, *args):
        super().__init__(*args)
        self.planned = 0

    def __setitem__(self, key, value):
        self.planned += 1
        super().__setitem__(key, value)


def stack_of(path: Path):
    return build_stack(sources_of(path.read_text()))


def test_a_change_to_one_environment_plans_that_environment_only(tmp_path):
    path = environments_stack(tmp_path, 6)
    memo = CountingMemo()
    assert plan(stack_of(path), memo) == plan(stack_of(path)) and memo.planned == 6
    one_environment_edit(path, "env-004", 2)
    memo.planned = 0
    edited = stack_of(path)
    assert plan(edited, json.loads(json.dumps(memo))) == plan(edited)  # what the cache gives back: JSON
    assert plan(edited, memo) == plan(edited) and memo.planned == 1


def test_a_change_every_environment_reads_plans_them_all(tmp_path):
    path = environments_stack(tmp_path, 3)
    memo = CountingMemo()
    plan(stack_of(path), memo)
    path.write_text(path.read_text().replace("hostname: ml.acme.example", "hostname: ml2.acme.example", 1))  # a stack-wide setting
    memo.planned = 0
    edited = stack_of(path)
    assert plan(edited, memo) == plan(edited) and memo.planned == 3


def test_where_a_line_is_written_does_not_matter(tmp_path):
    """A comment added at the top moves every line (and the waivers' positions): no environment is planned again."""
    path = environments_stack(tmp_path, 3)
    memo = CountingMemo()
    plan(stack_of(path), memo)
    path.write_text("# platform\n" + path.read_text())
    memo.planned = 0
    assert plan(stack_of(path), memo) == plan(stack_of(path)) and memo.planned == 0


def test_the_record_keeps_the_last_plans_and_drops_what_it_cannot_read(tmp_path, kfgen_cache):
    path = environments_stack(tmp_path, 3)
    first = PlanMemo(path)
    plan(stack_of(path), first)
    first.save()
    again = PlanMemo(path)
    assert set(again) == set(first) and len(again) == 3
    record = cache.read("plans", again.name)
    broken = sorted(record["plans"])[0]
    record["plans"][broken]["placements"] = {"workloads": [["ns", "only-two"]]}
    cache.write("plans", again.name, record)
    assert set(PlanMemo(path)) == set(first) - {broken}
    assert PlanMemo(path, recall=False) == {}
