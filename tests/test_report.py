"""The review's formats on reviews made in memory: impact order, the comment limit (nothing cut silently),
bulk additions summarized, Mermaid graphs with exact text."""

from __future__ import annotations

from kfgen.diff import Change, EnvSync, Review, Snapshot, compare
from kfgen.report import MARKDOWN_LIMIT, as_markdown, as_text

SYNC = EnvSync(True, True, True, "main", False, "server https://kubernetes.default.svc")


def review_of(changes: list[Change], envs=("prod",)) -> Review:
    snapshot = Snapshot({env: {} for env in envs}, {env: SYNC for env in envs})
    return Review(changes, snapshot, snapshot)


def test_compare_orders_by_impact_not_by_environment():
    def cm(name, data):
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "ml"}, "data": data}
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "x.example"}}
    def job(n):
        return {"apiVersion": "kubeflow.org/v1", "kind": "TFJob", "metadata": {"name": "iris", "namespace": "ml"}, "spec": {"n": n}}
    def app(a):
        return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"name": "a", "namespace": "argocd"}, "spec": a}
    def key(o):
        return (o["apiVersion"], o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"])
    old = {"alpha": {}, "zeta": {key(o): o for o in (job(1), app({"x": 1}), cm("gone", {}), crd)}}
    new = {"alpha": {key(o): o for o in (cm("new", {}), crd, job(1), app({"x": 1}))}, "zeta": {key(o): o for o in (job(2), app({"x": 2}))}}
    assert [(c.change, c.env, c.kind) for c in compare(old, new)] == [
        ("changed", "zeta", "TFJob"), ("changed", "zeta", "Application"), ("removed", "zeta", "ConfigMap"),
        ("removed", "zeta", "CustomResourceDefinition"),
        ("added", "alpha", "TFJob"), ("added", "alpha", "Application"), ("added", "alpha", "ConfigMap"),
        ("added", "alpha", "CustomResourceDefinition")]


def test_markdown_stays_under_the_limit_and_names_every_change_it_cannot_show():
    big = "".join(f"+line {i}\n" for i in range(2500))
    changes = [Change("prod", "v1", "ConfigMap", "ml", f"cm-{i}", "changed", big) for i in range(10)]
    text = as_markdown(review_of(changes), "stack.yaml", "origin/main")
    assert len(text) < MARKDOWN_LIMIT
    assert text.count("<details>") == 2
    assert text.endswith("**Not shown in full:** 8 of 10 entries (a comment holds 65,000 characters); each is listed here. "
                         "Run `kfgen diff stack.yaml --base origin/main` for every diff.\n\n"
                         + "".join(f"- changed: `prod` ConfigMap ml/cm-{i} (+2500 -0)\n" for i in range(2, 10)))


def test_when_even_the_names_do_not_fit_they_are_counted_by_kind():
    changes = [Change("prod", "v1", "ConfigMap", "ml", f"a-rather-long-config-map-name-{i:05d}", "changed", "+x\n") for i in range(3000)]
    text = as_markdown(review_of(changes), "stack.yaml", "origin/main")
    assert len(text) < MARKDOWN_LIMIT
    assert text.endswith("each is listed here. Run `kfgen diff stack.yaml --base origin/main` for every diff.\n\n"
                         f"- changed: `prod` ConfigMap ({3000 - text.count('<details>')})\n")


def test_bulk_additions_are_summarized_by_kind_and_workloads_shown_in_full():
    adds = [Change("staging", "v1", kind, "ml", f"{kind.lower()}-{i}", "added", "+a\n", "other")
            for kind, n in (("ConfigMap", 15), ("Service", 10)) for i in range(n)]
    adds.append(Change("staging", "kubeflow.org/v1", "TFJob", "ml", "iris", "added", "+tfjob\n", "workload"))
    review = review_of(sorted(adds, key=lambda c: (c.area != "workload", c.kind, c.name)), envs=("staging",))
    text = as_markdown(review, "stack.yaml", "origin/main")
    details = text[text.index("#### Changes, by impact"):]
    assert details.startswith("#### Changes, by impact\n\n<details><summary>added: <code>staging</code> TFJob ml/iris</summary>")
    assert ("<details><summary>added: <code>staging</code> 25 more objects (summarized)</summary>\n\n"
            "| kind | added |\n|---|---:|\n| ConfigMap | 15 |\n| Service | 10 |\n\n- ConfigMap ml/configmap-0\n") in details
    assert details.count("<details>") == 2


def test_text_shows_everything_in_order():
    changes = [Change("prod", "kubeflow.org/v1", "TFJob", "ml", "iris", "changed", "-a\n+b\n", "workload")]
    assert as_text(review_of(changes)) == "0 removed, 1 changed, 0 added\n  changed  prod: TFJob ml/iris\n\n-a\n+b\n"
    assert as_text(review_of([])) == "no changes to the rendered objects or the Argo CD objects\n"


def test_the_environment_graph_is_exact():
    app = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
           "metadata": {"name": "acme-prod-training-operator", "namespace": "argocd", "labels": {"kfgen.io/component": "training-operator"}}}
    job = {"apiVersion": "kubeflow.org/v1", "kind": "TFJob",
           "metadata": {"name": "iris", "namespace": "ml", "labels": {"kfgen.io/component": "training-operator", "kfgen.io/workload": "iris"}}}
    def key(o):
        return (o["apiVersion"], o["kind"], o["metadata"]["namespace"], o["metadata"]["name"])
    snapshot = Snapshot({"prod": {key(app): app, key(job): job}}, {"prod": SYNC})
    changes = [Change("prod", "kubeflow.org/v1", "TFJob", "ml", "iris", "changed", "-a\n+b\n", "workload")]
    text = as_markdown(Review(changes, snapshot, snapshot), "stack.yaml", "main")
    graph = text[text.index("```mermaid"):]
    assert graph.startswith('```mermaid\nflowchart LR\n  subgraph env_prod["prod: syncs automatically (prune, self-heal), follows main"]\n'
                            '  n0["training-operator (Application)"]\n  n1["TFJob iris"]:::changed\n  n0 --> n1\n  end\n'
                            "  classDef added fill:#dafbe1,stroke:#1a7f37\n")
