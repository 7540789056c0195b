"""TensorFlow Serving's REST API over one SavedModel, with the local TensorFlow.

What `tensorflow_model_server --model_name=NAME --model_base_path=DIR` answers on its REST port:
the latest numeric version folder of DIR is loaded; `POST /v1/models/NAME[/versions/N|/labels/L]:predict`
takes `{"instances": ...}` (row format, answered with "predictions") or `{"inputs": ...}` (columnar,
answered with "outputs"), and an optional "signature_name" (default serving_default);
`GET /v1/models/NAME[/versions/N]` is the model's status and `.../metadata` its signature defs.
Errors are `{"error": "..."}` with TF Serving's messages and status codes (400 bad request, 404 no
such model or version). Floats are written as TF Serving writes them: the shortest of six
significant digits that reads back the same value, else full precision, always with a decimal point.

Sources: tensorflow/serving 2.19 tensorflow_serving/util/json_tensor.cc (request parsing, response
writing), model_servers/http_rest_api_util.cc (paths), http_rest_api_handler.cc, http_server.cc
(status codes), core/manager.h (error messages), g3doc/api_rest.md.
"""

from __future__ import annotations

import base64
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kfgen.errors import InputError

DEFAULT_SIGNATURE = "serving_default"
PREDICT_PATH = re.compile(r"(?i)/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)")
STATUS_PATH = re.compile(r"(?i)/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?")


@dataclass(frozen=True)
class Reply:
    """An HTTP answer: status code, JSON body text."""

    status: int
    body: str

    @staticmethod
    def error(status: int, message: str) -> Reply:
        return Reply(status, json.dumps({"error": message}) + "\n")


class ServingError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def versions(base: Path) -> list[int]:
    """The version folders TF Serving finds under a model base path (numeric names), oldest first."""
    if not base.is_dir():
        return []
    return sorted(int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit())


class Servable:
    """One model loaded as TF Serving loads it: its latest version, every signature."""

    def __init__(self, name: str, base: Path):
        found = versions(base)
        if not found:
            raise InputError(f"{base}: no version folder (e.g. {base}/1/saved_model.pb): TensorFlow Serving would find no model to serve")
        import tensorflow as tf

        self.name, self.base, self.version = name, base, found[-1]
        path = base / str(self.version)
        try:
            self.loaded = tf.saved_model.load(str(path))
        except Exception as exc:  # a broken SavedModel is the user's input: one line, exit 2
            raise InputError(f"{path}: TensorFlow cannot load this SavedModel ({str(exc).strip().splitlines()[0][:200]})") from None
        self.signatures = dict(self.loaded.signatures)
        self.path = path

    # --- the REST API -------------------------------------------------------------------------

    def handle(self, method: str, path: str, body: bytes) -> Reply:
        """Answer one request to TF Serving's /v1/ API."""
        try:
            if method == "POST":
                match = PREDICT_PATH.fullmatch(path)
                if not match:
                    raise ServingError(400, f"Malformed request: POST {path}")
                name, version, label, verb = match.groups()
                self._servable(name, version, label)
                if verb.lower() != "predict":
                    raise ServingError(501, f"kfgen serve-local answers predict, not {verb.lower()} (no tf.Example signatures)")
                return Reply(200, self.predict(body))
            match = STATUS_PATH.fullmatch(path) if method == "GET" else None
            if not match:
                raise ServingError(400, f"Malformed request: {method} {path}")
            name, version, label, metadata = match.groups()
            if not name:
                raise ServingError(400, "Missing model name in request.")
            if metadata:
                self._servable(name, version, label)
                return Reply(200, self.metadata(version))
            return Reply(200, self.status(name, version, label))
        except ServingError as exc:
            return Reply.error(exc.status, str(exc))

    def _servable(self, name: str, version: str | None, label: str | None) -> None:
        if version and label:
            raise ServingError(400, f"Both model version ({version}) and model version label ({label}) cannot be supplied.")
        if label:
            raise ServingError(400, f"Unrecognized servable version label: {label}")
        if name != self.name:
            raise ServingError(404, f"Servable not found for request: {f'Specific({name}, {int(version)})' if version else f'Latest({name})'}")
        if version and int(version) != self.version:
            raise ServingError(404, f"Servable not found for request: Specific({name}, {int(version)})")

    def status(self, name: str, version: str | None, label: str | None) -> str:
        if label:
            raise ServingError(400, f"Unrecognized servable version label: {label}")
        if name != self.name:
            raise ServingError(404, f"Could not find any versions of model {name}")
        if version and int(version) != self.version:
            raise ServingError(404, f"Could not find version {int(version)} of model {name}")
        status = {"version": str(self.version), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        return json.dumps({"model_version_status": [status]}, indent=1) + "\n"

    def metadata(self, version: str | None) -> str:
        """GetModelMetadataResponse: the model spec and every signature def of the SavedModel."""
        from google.protobuf import json_format
        from tensorflow.core.protobuf import saved_model_pb2

        saved = saved_model_pb2.SavedModel()
        saved.ParseFromString((self.path / "saved_model.pb").read_bytes())
        defs = {k: json_format.MessageToDict(v, always_print_fields_with_no_presence=True, preserving_proto_field_name=True)
                for k, v in sorted(saved.meta_graphs[0].signature_def.items())}
        spec = {"name": self.name, "signature_name": "", "version": str(self.version)}
        return json.dumps({"model_spec": spec, "metadata": {"signature_def": {"signature_def": defs}}}, indent=1) + "\n"

    def predict(self, body: bytes) -> str:
        """The predict API: a JSON request in, the JSON response text out (ServingError on bad input)."""
        import numpy as np
        import tensorflow as tf

        request = _parse(body)
        signature = request.get("signature_name", DEFAULT_SIGNATURE)
        if not isinstance(signature, str):
            raise ServingError(400, f"JSON Value: {_debug(request)} not formatted correctly. 'signature_name' key must be a string value.")
        function = self.signatures.get(signature or DEFAULT_SIGNATURE)
        if function is None:
            raise ServingError(400, f'Serving signature name: "{signature or DEFAULT_SIGNATURE}" not found in signature def')
        specs = dict(sorted(function.structured_input_signature[1].items()))
        if not specs:
            raise ServingError(400, f"Failed to get input map for signature: {signature or 'DEFAULT'}")
        row = "instances" in request
        if row and "inputs" in request:
            raise ServingError(400, f"JSON Value: {_debug(request)} Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist ")
        if row:
            columns = _columns_from_instances(request["instances"], specs, request)
        elif "inputs" in request:
            columns = _columns_from_inputs(request["inputs"], specs)
        else:
            raise ServingError(400, "Missing 'inputs' or 'instances' key")
        tensors = {}
        for name, spec in specs.items():
            try:
                tensors[name] = tf.constant(np.array(columns[name], dtype=_numpy_type(spec.dtype)))
            except (ValueError, TypeError) as exc:
                raise ServingError(400, f"Failed to process input {name}: {str(exc).splitlines()[0]}") from None
        try:
            outputs = function(**tensors)
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as exc:
            message = getattr(exc, "message", None) or str(exc)
            raise ServingError(400, message.strip().splitlines()[0]) from None
        return _write_outputs({k: v.numpy() for k, v in sorted(outputs.items())}, row)


# --- request parsing -----------------------------------------------------------------------------

def _parse(body: bytes) -> dict:
    if not body.strip():
        raise ServingError(400, "JSON Parse error: The document is empty")
    try:
        request = json.loads(body)
    except ValueError as exc:
        raise ServingError(400, f"JSON Parse error: {exc.msg} at offset: {exc.pos}") from None  # type: ignore[attr-defined]
    if not isinstance(request, dict):
        raise ServingError(400, f"JSON Value: {_debug(request)} Is not object")
    return request


def _debug(value: Any) -> str:
    return json.dumps(value)[:200]


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and list(value) == ["b64"]


def _decode(value: Any) -> Any:
    """Nested lists with {"b64": ...} objects turned into bytes."""
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if _is_b64(value):
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (ValueError, TypeError):
            raise ServingError(400, "Unable to base64 decode") from None
    return value


def _columns_from_instances(instances: Any, specs: dict, request: dict) -> dict[str, list]:
    if not isinstance(instances, list):
        raise ServingError(400, f"JSON Value: {_debug(request)} Expecting 'instances' to be an list/array")
    if not instances:
        raise ServingError(400, f"JSON Value: {_debug(request)} No values in 'instances' array")
    objects = isinstance(instances[0], dict) and not _is_b64(instances[0])
    if not objects and len(specs) > 1:
        raise ServingError(400, "instances is a plain list, but expecting list of objects as multiple input tensors required as per tensorinfo_map")
    columns: dict[str, list] = {name: [] for name in specs}
    for i, item in enumerate(instances):
        is_object = isinstance(item, dict) and not _is_b64(item)
        if objects != is_object:
            wanted, got = ("object", "list") if objects else ("value/list", "object")
            raise ServingError(400, f"Expecting {wanted} but got {got} at item {i} of input list")
        if objects:
            if set(item) != set(specs):
                raise ServingError(400, f"Failed to process element: {i} of 'instances' list. JSON object: {_debug(item)} "
                                        f"keys must be equal to: {','.join(sorted(specs))}")
            for name in specs:
                columns[name].append(_decode(item[name]))
        else:
            columns[next(iter(specs))].append(_decode(item))
    return columns


def _columns_from_inputs(inputs: Any, specs: dict) -> dict[str, Any]:
    if not isinstance(inputs, dict) or _is_b64(inputs):
        if len(specs) > 1:
            raise ServingError(400, "inputs is a plain value/list, but expecting an object as multiple input tensors required as per tensorinfo_map")
        return {next(iter(specs)): _decode(inputs)}
    for name in specs:
        if name not in inputs:
            raise ServingError(400, f"Missing named input: {name} in 'inputs' object.")
    return {name: _decode(inputs[name]) for name in specs}


def _numpy_type(dtype: Any) -> Any:
    return object if dtype.name == "string" else dtype.as_numpy_dtype


# --- response writing ----------------------------------------------------------------------------

def _write_outputs(outputs: dict, row: bool) -> str:
    if row:
        sizes = {name: (value.shape[0] if value.ndim else None) for name, value in outputs.items()}
        for name, size in sizes.items():
            if size is None:
                raise ServingError(400, f"Tensor name: {name} has no shape information ")
        batch = next(iter(sizes.values()), 0)
        for name, size in sizes.items():
            if size != batch:
                raise ServingError(400, f"Tensor name: {name} has inconsistent batch size: {size} expecting: {batch}")
        items = []
        for i in range(batch or 0):
            if len(outputs) > 1:
                items.append("{" + ", ".join(f"{json.dumps(n)}: {_json(v[i], n)}" for n, v in outputs.items()) + "}")
            else:
                (name, value), = outputs.items()
                items.append(_json(value[i], name))
        return '{\n    "predictions": [' + ", ".join(items) + "]\n}\n"
    if len(outputs) > 1:
        inner = "{" + ", ".join(f"{json.dumps(n)}: {_json(v, n)}" for n, v in outputs.items()) + "}"
    else:
        (name, value), = outputs.items()
        inner = _json(value, name)
    return '{\n    "outputs": ' + inner + "\n}\n"


def _json(value: Any, name: str) -> str:
    """A tensor (numpy array or scalar) as TF Serving writes it."""
    import numpy as np

    if isinstance(value, np.ndarray) and value.ndim:
        return "[" + ", ".join(_json(v, name) for v in value) + "]"
    if isinstance(value, np.ndarray):
        value = value[()]
    if isinstance(value, np.floating):
        return decimal(float(value), single=value.dtype.itemsize <= 4)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (bytes, bytearray)):
        if name.endswith("_bytes"):
            return json.dumps({"b64": base64.b64encode(value).decode()})
        return json.dumps(value.decode("utf-8", errors="replace"))
    if isinstance(value, float):
        return decimal(value, single=False)
    return json.dumps(value)


def decimal(value: float, single: bool = True) -> str:
    """WriteDecimal: six significant digits when they read back the same float32 (float64 when
    `single` is false), else max_digits10; '.0' added to whole numbers; NaN and ±Infinity as tokens."""
    import numpy as np

    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "-Infinity" if value < 0 else "Infinity"
    kind = np.float32 if single else np.float64
    text = "%.6g" % value
    if kind(text) != kind(value):
        text = "%.9g" % value if single else "%.17g" % value
    if "." not in text and "e" not in text:
        text += ".0"
    return text
