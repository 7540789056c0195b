"""The user's loop on CPU: train the example with run-local, serve its SavedModel with serve-local,
send the requests they will send to the model's route in the cluster.

Expected shapes come from upstream, not from kfgen: TensorFlow Serving's REST API (tensorflow/serving
g3doc/api_rest.md and util/json_tensor.cc: row format in, "predictions" out, one object per instance
when the signature has several outputs; errors as {"error": ...}, "Servable not found for request:
Latest(<name>)" with 404), Seldon Core v1.17.1 (executor/api/rest/server.go: the tensorflow protocol's
paths, a 404 "404 page not found" elsewhere; the prepackaged TENSORFLOW_SERVER runs TF Serving with
--model_name=<graph node name>; servers/tfserving_proxy/TfServingProxy.py and python/seldon_core/utils.py
for the seldon protocol), and the values from real TensorFlow running the SavedModel's signature.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from conftest import ROOT, copy_stack, edit

from kfgen.cli import main
from kfgen.errors import InputError
from kfgen.render import render
from kfgen.serve_local import find_predictor
from kfgen.tfserving import decimal

SAMPLES = [[5.0, 3.4, 1.5, 0.2], [6.7, 3.0, 5.7, 2.1]]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The example's iris job run locally (two workers, MultiWorkerMirroredStrategy), once for this module."""
    tmp = tmp_path_factory.mktemp("trained")
    stack = copy_stack("example", tmp)
    render(stack)
    code = main(["tfjob", "run-local", str(stack), "--job", "iris", "--env", "dev", "--steps", "40", "--model-dir", str(tmp / "model"),
                 "--work-dir", str(tmp / "work"), "--timeout", "300"])
    assert code == 0
    return stack, tmp / "model", tmp / "work"


def tensorflow_says(model: Path, script: str) -> dict:
    """Run a script with real TensorFlow in a fresh process; it prints one JSON line."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script), str(model)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.kustomize
def test_training_leaves_a_model_checkpoints_and_tensorboard_logs(trained):
    stack, model, work = trained
    assert sorted(p.name for p in model.iterdir()) == ["1"] and (model / "1/saved_model.pb").is_file()
    assert (work / "checkpoints/checkpoint").is_file() and list((work / "checkpoints").glob("ckpt-40.index"))
    assert list((work / "tensorboard").glob("events.out.tfevents.*"))
    logs = {p.name: p.read_text() for p in (work / "logs").iterdir()}
    assert sorted(logs) == ["worker-0.log", "worker-1.log"]
    assert '{"step": 40,' in logs["worker-0.log"] and '{"step": 40,' in logs["worker-1.log"]


@pytest.mark.kustomize
def test_the_example_trains_reproducibly(trained, tmp_path):
    stack, model, _ = trained
    code = main(["tfjob", "run-local", str(stack), "--job", "iris", "--env", "dev", "--steps", "40", "--model-dir", str(tmp_path / "again"),
                 "--work-dir", str(tmp_path / "work"), "--timeout", "300"])
    assert code == 0
    same = tensorflow_says(model, f"""
        import json, sys
        import numpy as np, tensorflow as tf
        def weights(folder):
            reader = tf.train.load_checkpoint(folder + "/1/variables/variables")
            return {{k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map() if "OBJECT_GRAPH" not in k}}
        a, b = weights(sys.argv[1]), weights({str(tmp_path / "again")!r})
        print(json.dumps({{"names": sorted(a), "equal": sorted(a) == sorted(b) and all(np.array_equal(a[k], b[k]) for k in a)}}))
    """)
    assert len(same["names"]) == 4 and same["equal"]  # two Dense layers' kernels and biases, bit for bit


class Server:
    """`kfgen serve-local` as a user runs it, in its own process."""

    def __init__(self, *args: object):
        env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
        self.process = subprocess.Popen([sys.executable, "-m", "kfgen", "serve-local", *map(str, args), "--port", "0"], cwd=ROOT,
                                        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        assert line, self.process.communicate()
        self.url, self.example = line.rstrip("\n").split("\t")

    def request(self, path: str, body: object = None, content_type: str = "application/json") -> tuple[int, str]:
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        request = urllib.request.Request(self.url.split("/models/")[0] + path, data=data, method="GET" if data is None else "POST")
        if data is not None and content_type:
            request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def stop(self, sig: int = signal.SIGINT) -> tuple[int, str]:
        self.process.send_signal(sig)
        _, err = self.process.communicate(timeout=60)
        return self.process.returncode, err


@pytest.mark.kustomize
def test_serve_local_answers_what_the_cluster_answers_at_the_models_route(trained):
    stack, model, _ = trained
    expected = tensorflow_says(model, f"""
        import json, sys
        import tensorflow as tf
        serve = tf.saved_model.load(sys.argv[1] + "/1").signatures["serving_default"]
        out = serve(features=tf.constant({SAMPLES}, dtype=tf.float32))
        print(json.dumps({{k: v.numpy().tolist() for k, v in out.items()}}))
    """)
    server = Server(stack, "--model", "iris", "--env", "dev", "--model-dir", model)
    try:
        assert server.url.endswith("/models/iris/")  # the route's prefix, as the gateway's Mapping has it
        assert server.example == f"POST {server.url}v1/models/iris:predict"
        # what a user sends to https://<host>/models/iris/ in the cluster: the executor speaks TF Serving's API (protocol
        # tensorflow, TENSORFLOW_SERVER's default), TF Serving knows the model by the graph node's name, `model`
        status, body = server.request("/models/iris/v1/models/iris:predict", {"instances": SAMPLES})
        assert status == 200, body
        predictions = json.loads(body)["predictions"]
        assert [p["classes"] for p in predictions] == expected["classes"] == [0, 2]
        for got, want in zip(predictions, expected["probabilities"]):
            assert got["probabilities"] == pytest.approx(want, rel=1e-6)  # TF Serving writes floats with up to 9 digits
        status, body = server.request("/models/iris/v1/models/iris:predict", {"inputs": {"features": SAMPLES}})
        assert status == 200 and json.loads(body)["outputs"]["classes"] == [0, 2]
        status, body = server.request("/models/iris/v1/models/iris")
        assert (status, json.loads(body)) == (200, {"model_version_status": [
            {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]})
        status, body = server.request("/models/iris/v1/models/iris/metadata")
        inputs = json.loads(body)["metadata"]["signature_def"]["signature_def"]["serving_default"]["inputs"]
        assert status == 200 and inputs["features"]["dtype"] == "DT_FLOAT"
        # the mistakes the cluster answers the same way
        assert server.request("/models/iris/v1/models/model:predict", {"instances": SAMPLES}) == (
            404, '{"error": "Servable not found for request: Latest(model)"}\n')
        assert server.request("/models/iris/api/v1.0/predictions", {"data": {"ndarray": SAMPLES}}) == (404, "404 page not found\n")
        status, body = server.request("/models/iris/v1/models/iris:predict", {"instances": [[1.0, 2.0]]})
        assert status == 400 and "error" in json.loads(body)
        assert server.request("/models/iris/v1/models/iris:predict", {"signature_name": "nope", "instances": SAMPLES}) == (
            400, '{"error": "Serving signature name: \\"nope\\" not found in signature def"}\n')
    finally:
        code, err = server.stop(signal.SIGTERM)
    assert code == 0 and err.splitlines()[-1] == "kfgen: stopped serving iris"


@pytest.mark.kustomize
def test_serve_local_speaks_the_seldon_protocol_when_the_predictor_does(trained, tmp_path):
    stack, model, _ = trained
    seldon = copy_stack("example", tmp_path)
    edit(seldon, "        server: TENSORFLOW_SERVER\n", "        server: TENSORFLOW_SERVER\n        protocol: seldon\n"
                 "        versions:\n          stable: {traffic: 90}\n          canary: {modelUri: gs://acme-ml-models/iris-v2, traffic: 10}\n")
    server = Server(seldon, "--model", "iris", "--env", "dev", "--model-dir", model, "--predictor", "canary")
    try:
        assert server.example == f"POST {server.url}api/v1.0/predictions"
        status, body = server.request("/models/iris/api/v1.0/predictions", {"data": {"ndarray": SAMPLES}, "meta": {"puid": "abc"}})
        assert status == 200, body
        answer = json.loads(body)
        # tfserving-proxy: numpy.array(TF Serving's predictions) -> one row of two {output: value} objects; the wrapper:
        # ndarray back, names t:0..t:1, requestPath {PREDICTIVE_UNIT_ID: PREDICTIVE_UNIT_IMAGE}, the request's puid
        assert answer["meta"] == {"puid": "abc", "requestPath": {"iris": "docker.io/seldonio/tfserving-proxy:1.17.1"}}
        assert answer["data"]["names"] == ["t:0", "t:1"]
        assert [[item["classes"] for item in row] for row in answer["data"]["ndarray"]] == [[0, 2]]
        status, body = server.request("/models/iris/api/v1.0/predictions", {"data": {"ndarray": SAMPLES}}, content_type="")
        assert (status, json.loads(body)) == (400, {"status": {"status": 1, "info": "Can't find JSON in data", "code": -1,
                                                               "reason": "MICROSERVICE_BAD_DATA"}})
        form = b"json=" + urllib.parse.quote(json.dumps({"data": {"ndarray": SAMPLES}})).encode()  # the wrapper reads a form's json field too
        status, body = server.request("/models/iris/api/v1.0/predictions", form, content_type="application/x-www-form-urlencoded")
        assert status == 200 and json.loads(body)["data"]["names"] == ["t:0", "t:1"]
        assert server.request("/models/iris/v1/models/iris:predict", {"instances": SAMPLES}) == (404, "404 page not found\n")
        status, body = server.request("/v1/models/iris:predict", {"instances": SAMPLES})  # TF Serving's own port, behind the proxy
        assert status == 200 and [p["classes"] for p in json.loads(body)["predictions"]] == [0, 2]
    finally:
        code, err = server.stop(signal.SIGINT)
    assert code == 0 and err.splitlines()[-1] == "kfgen: stopped serving iris"
    assert f"kfgen: serving iris (dev, protocol seldon, predictor canary (not stable: --predictor)) version 1 from {model}; " \
           "in the cluster: https://ml.dev.acme.example/models/iris/" in err.splitlines()


@pytest.mark.kustomize
def test_serve_local_errors_are_one_line(kfgen, trained, tmp_path):
    stack, model, _ = trained
    run = kfgen("serve-local", stack, "--model", "iris", "--env", "dev")
    assert (run.code, run.err) == (2, "--model-dir is required: the model's modelUri 's3://ml-models/iris' is not on this machine "
                                      "(give the folder run-local wrote, the KFGEN_MODEL_DIR of the training job)\n")
    run = kfgen("serve-local", stack, "--model", "irises", "--env", "dev", "--model-dir", model)
    assert (run.code, run.err) == (2, "no SeldonDeployment 'irises' rendered for environment 'dev' (have: iris)\n")
    run = kfgen("serve-local", stack, "--model", "iris", "--env", "dev", "--model-dir", model / "1")
    assert (run.code, run.err) == (2, f"{model}/1: no version folder (e.g. {model}/1/1/saved_model.pb): TensorFlow Serving would find no model to serve\n")
    run = kfgen("serve-local", stack, "--model", "iris", "--model-dir", model)
    assert (run.code, run.err) == (2, "--env is required: the stack has environments dev, prod\n")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = kfgen("serve-local", stack, "--model", "iris", "--env", "dev", "--model-dir", model, "--port", port)
    assert (run.code, run.err) == (2, f"--port {port}: Address already in use; choose another port\n")


@pytest.mark.parametrize("value, single, text", [
    # json_tensor.cc WriteDecimal: StrCat's six digits ("%g": 9000000 -> 9e+06, .00003 -> 3e-05), full precision
    # (max_digits10) when those do not read back the same number, '.0' on whole numbers, NaN/Infinity tokens
    (0.2, True, "0.2"), (9000000.0, True, "9e+06"), (0.00003, True, "3e-05"), (3.0, True, "3.0"), (-1.5, True, "-1.5"),
    (0.123456789, True, "0.123456791"), (0.123456789, False, "0.123456789"), (1 / 3, False, "0.33333333333333331"),
    (float("nan"), True, "NaN"), (float("-inf"), True, "-Infinity"),
])
def test_floats_are_written_as_tensorflow_serving_writes_them(value, single, text):
    import numpy as np

    assert decimal(float(np.float32(value)) if single else value, single) == text


def test_with_a_traffic_split_the_version_with_the_most_traffic_is_served():
    def sdep(*predictors):
        return {"kind": "SeldonDeployment", "metadata": {"name": "iris", "namespace": "ml"},
                "spec": {"protocol": "tensorflow", "predictors": [
                    {"name": n, "graph": {"name": "model", "implementation": "TENSORFLOW_SERVER", "modelUri": f"gs://m/{n}"}, **extra}
                    for n, extra in predictors]}}

    def route(predictor, **extra):
        return {"kind": "Mapping", "metadata": {"name": f"model-iris-{predictor}", "namespace": "ml"},
                "spec": {"prefix": "/models/iris/", "rewrite": "/", "service": f"iris-{predictor}.ml:8000", **extra}}

    objects = [sdep(("mirror", {"shadow": True}), ("canary", {"traffic": 10}), ("stable", {"traffic": 90})),
               route("mirror", shadow=True), route("canary", weight=10), route("stable", weight=90)]
    served = find_predictor(objects, "iris", "prod")
    assert (served.predictor, served.model_uri, served.others, [r.prefix for r in served.routes]) == (
        "stable", "gs://m/stable", ("mirror", "canary"), ["/models/iris/"])
    assert find_predictor(objects, "iris", "prod", "mirror").model_uri == "gs://m/mirror"
    assert find_predictor([sdep(("default", {}))], "iris", "dev").predictor == "default"
    with pytest.raises(InputError, match=r"^--predictor blue: SeldonDeployment iris has no such predictor \(it has: mirror, canary, stable\)$"):
        find_predictor(objects, "iris", "prod", "blue")
