"""REST API of the real server against half_plus_two (spec §1-§3)."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
import tensorflow as tf

from tests.runtime.conftest import MAX_BODY_BYTES, TESTDATA

MODEL = "/v1/models/half_plus_two"


def post(client: httpx.Client, path: str, body: Any) -> httpx.Response:
    content = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post(path, content=content)


def error_of(response: httpx.Response) -> str:
    assert response.headers["content-type"] == "application/json"
    return response.json()["error"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"instances": [[1.0], [2.0], [5.0]]}, {"predictions": [[2.5], [3.0], [4.5]]}),
        ({"instances": [2.0, 3.0, 4.0]}, {"predictions": [3.0, 3.5, 4.0]}),
        ({"instances": [{"x": [1.0]}, {"x": [3.0]}]}, {"predictions": [[2.5], [3.5]]}),
        ({"inputs": {"x": [[1.0], [2.0]]}}, {"outputs": [[2.5], [3.0]]}),
        ({"inputs": [[1.0]]}, {"outputs": [[2.5]]}),
        ({"inputs": 1.0}, {"outputs": 2.5}),
        ({"inputs": {"x": [[1.0]], "extra": 1}}, {"outputs": [[2.5]]}),
        ({"signature_name": "regress_x2_to_y3", "instances": [[2.0]]}, {"predictions": [[4.0]]}),
    ],
)
def test_predict(rest: httpx.Client, body: dict, expected: dict) -> None:
    response = post(rest, f"{MODEL}:predict", body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == expected


def test_predict_b64_string_input(rest: httpx.Client) -> None:
    example = tf.train.Example(
        features=tf.train.Features(
            feature={
                "x": tf.train.Feature(float_list=tf.train.FloatList(value=[4.0])),
            }
        )
    ).SerializeToString()
    body = {
        "signature_name": "classify_x_to_y",
        "instances": [{"b64": base64.b64encode(example).decode()}],
    }
    response = post(rest, f"{MODEL}:predict", body)
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": [[4.0]]}


def test_predict_nan_and_infinity_tokens(rest: httpx.Client) -> None:
    response = post(rest, f"{MODEL}:predict", b'{"instances": [NaN, Infinity, -Infinity]}')
    assert response.status_code == 200
    assert (
        response.text.replace(" ", "").replace("\n", "")
        == '{"predictions":[NaN,Infinity,-Infinity]}'
    )


def test_predict_version_and_label_routes(rest: httpx.Client) -> None:
    ok = post(rest, f"{MODEL}/versions/123:predict", {"instances": [[1.0]]})
    assert ok.json() == {"predictions": [[2.5]]}
    missing = post(rest, f"{MODEL}/versions/124:predict", {"instances": [[1.0]]})
    assert missing.status_code == 404
    assert error_of(missing) == "Servable not found for request: Specific(half_plus_two, 124)"
    label = post(rest, f"{MODEL}/labels/stable:predict", {"instances": [[1.0]]})
    assert label.status_code == 400
    assert error_of(label) == "Unrecognized servable version label: stable"
    huge = post(rest, f"{MODEL}/versions/18446744073709551615:regress", {"examples": [{}]})
    assert huge.status_code == 400
    assert error_of(huge) == "Failed to convert version: 18446744073709551615 to numeric."


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        (f"{MODEL}:predict", b"", 400, "JSON Parse error: The document is empty"),
        (f"{MODEL}:predict", b"{bad", 400, "JSON Parse error:"),
        (f"{MODEL}:predict", b"[1]", 400, "Is not object"),
        (
            f"{MODEL}:predict",
            {"signature_name": 5, "instances": [1.0]},
            400,
            "'signature_name' key must be a string value.",
        ),
        (
            f"{MODEL}:predict",
            {"instances": [1.0], "inputs": [1.0]},
            400,
            "expecting only one of 'inputs' or 'instances' keys to exist",
        ),
        (f"{MODEL}:predict", {"foo": 1}, 400, "Missing 'inputs' or 'instances' key"),
        (f"{MODEL}:predict", {"instances": []}, 400, "No values in 'instances' array"),
        (f"{MODEL}:predict", {"instances": ["x"]}, 400, "is not of expected type: float"),
        (
            f"{MODEL}:predict",
            {"instances": [[1.0], [1.0, 2.0]]},
            400,
            "Expecting tensor size: 1 but got: 2",
        ),
        (f"{MODEL}:predict", {"instances": [{"y": 1.0}]}, 400, "does not have named input: y"),
        (f"{MODEL}:predict", {"inputs": {"y": [1.0]}}, 400, "Missing named input: x in 'inputs'"),
        (
            f"{MODEL}:predict",
            {"signature_name": "nope", "instances": [1.0]},
            400,
            'Serving signature name: "nope" not found in signature def',
        ),
        (
            "/v1/models/nope:predict",
            {"instances": [1.0]},
            404,
            "Servable not found for request: Latest(nope)",
        ),
        ("/v1/models/nope:predict", b"not json", 400, "JSON Parse error"),
        (
            f"{MODEL}:classify",
            {"examples": [{"x": 1.0}]},
            400,
            "No classification inputs found in SignatureDef",
        ),
        (
            f"{MODEL}:regress",
            {"signature_name": "nope", "examples": [{"x": 1.0}]},
            400,
            "No signature was found with the name: nope",
        ),
        (
            f"{MODEL}:classify",
            {"signature_name": "classify_x_to_y"},
            400,
            "When method is classify, key 'examples' is expected and was not found",
        ),
        (f"{MODEL}:regress", {"signature_name": "regress_x_to_y", "examples": [{"x": 2}]}, 400, ""),
        ("/v1/models/nope:classify", {"examples": [{"x": 1.0}]}, 404, "Servable not found"),
    ],
)
def test_predict_classify_regress_errors(
    rest: httpx.Client, path: str, body: Any, status: int, message: str
) -> None:
    response = post(rest, path, body)
    assert response.status_code == status, response.text
    assert message in error_of(response)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (f"{MODEL}:predict", b'{"instances": [[1.0], [2.0], [NaN]]}'),
        (f"{MODEL}/versions/123:predict", b'{"inputs": {"x": [[1.0]]}}'),
        (f"{MODEL}/labels/stable:predict", b'{"instances": [[1.0]]}'),
        (f"{MODEL}/labels/nope:predict", b'{"instances": [[1.0]]}'),
        (f"{MODEL}:predict", b'{"instances": [[1.0]'),
        (f"{MODEL}:predict", b'{"instances": [["a"]]}'),
        (f"{MODEL}/versions/99999999999999999999:predict", b'{"instances": [[1.0]]}'),
        ("/v1/models/nope:predict", b'{"instances": [[1.0]]}'),
        (f"{MODEL}:PREDICT", b'{"instances": [[1.0]]}'),
        (f"{MODEL}:classify", b'{"signature_name": "classify_x_to_y", "examples": [{"x": 1.0}]}'),
    ],
)
def test_fast_route_answers_like_the_asgi_path(rest: httpx.Client, path: str, body: bytes) -> None:
    """A Content-Length body takes the server's fast route, a chunked one the ASGI path."""
    direct = rest.post(path, content=body)
    chunked = rest.post(path, content=iter([body[:5], body[5:]]))
    assert chunked.request.headers["transfer-encoding"] == "chunked"
    assert direct.status_code == chunked.status_code
    assert direct.content == chunked.content
    for name in ("content-type", "content-length", "access-control-allow-origin"):
        assert direct.headers[name] == chunked.headers[name]


def test_classify_and_regress(rest: httpx.Client) -> None:
    classify = post(
        rest,
        f"{MODEL}:classify",
        {
            "signature_name": "classify_x_to_y",
            "examples": [{"x": 1.0}, {"x": [2.0]}],
        },
    )
    assert classify.status_code == 200, classify.text
    assert classify.json() == {"results": [[["", 2.5]], [["", 3.0]]]}
    regress = post(
        rest,
        f"{MODEL}:regress",
        {
            "signature_name": "regress_x_to_y2",
            "context": {"x": 4.0},
            "examples": [{}],
        },
    )
    assert regress.status_code == 200, regress.text
    assert regress.json() == {"results": [5.0]}
    regress = post(
        rest,
        f"{MODEL}/versions/123:regress",
        {
            "signature_name": "regress_x_to_y",
            "examples": [{"x": 2.0}, {"x": 6.0}],
        },
    )
    assert regress.json() == {"results": [3.0, 5.0]}


def test_model_status(rest: httpx.Client) -> None:
    expected = {
        "model_version_status": [
            {
                "version": "123",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }
    assert rest.get(MODEL).json() == expected
    assert rest.get(f"{MODEL}/versions/123").json() == expected
    assert rest.get(f"{MODEL}/labels/anything").json() == expected  # labels are not resolved
    missing = rest.get(f"{MODEL}/versions/9")
    assert missing.status_code == 404
    assert error_of(missing) == "Could not find version 9 of model half_plus_two"
    unknown = rest.get("/v1/models/nope")
    assert unknown.status_code == 404
    assert error_of(unknown) == "Could not find any versions of model nope"
    assert error_of(rest.get("/v1/models")) == "Missing model name in request."


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted(item) for key, item in sorted(value.items())}
    if isinstance(value, list):
        return sorted((_sorted(item) for item in value), key=json.dumps)
    return value


def test_model_metadata_matches_tf_serving(rest: httpx.Client) -> None:
    expected = json.loads((TESTDATA / "half_plus_two_model_metadata.json").read_text())
    expected["model_spec"]["name"] = "half_plus_two"
    response = rest.get(f"{MODEL}/metadata")
    assert response.status_code == 200
    assert _sorted(response.json()) == _sorted(expected)
    assert rest.get(f"{MODEL}/versions/123/metadata").status_code == 200
    missing = rest.get("/v1/models/nope/metadata")
    assert missing.status_code == 404
    assert error_of(missing) == "Servable not found for request: Latest(nope)"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", f"{MODEL}:predict"),
        ("DELETE", MODEL),
        ("POST", f"{MODEL}:PREDICT"),
        ("POST", f"{MODEL}/metadata"),
        ("GET", f"{MODEL}:predict"),
        ("GET", f"{MODEL}/versions/HELLO"),
        ("GET", f"{MODEL}/version/50"),
        ("GET", f"{MODEL}/label/x"),
        ("POST", f"{MODEL}/versions/1/labels/x:predict"),
    ],
)
def test_malformed_requests(rest: httpx.Client, method: str, path: str) -> None:
    response = rest.request(method, path, content=b"{}")
    assert response.status_code == 400
    assert error_of(response) == f"Malformed request: {method} {path}"


def test_non_v1_paths_get_html_404(rest: httpx.Client) -> None:
    response = rest.get("/v2/models/half_plus_two")
    assert response.status_code == 404
    assert "Not Found" in response.text


def test_cors(rest: httpx.Client) -> None:
    preflight = rest.options(f"{MODEL}:predict", headers={"Origin": "https://example.com"})
    assert preflight.status_code == 200
    assert preflight.content == b""
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert preflight.headers["access-control-allow-methods"] == "POST, GET"
    assert preflight.headers["access-control-allow-headers"] == "Content-Type"
    bad = rest.options(f"{MODEL}:predict")
    assert bad.status_code == 400
    assert error_of(bad) == "Origin header is missing in CORS preflight"
    assert rest.get(MODEL).headers["access-control-allow-origin"] == "*"


def test_oversized_body_gets_413(rest: httpx.Client) -> None:
    body = json.dumps({"instances": [1.0] * (MAX_BODY_BYTES // 4)})
    response = post(rest, f"{MODEL}:predict", body)
    assert response.status_code == 413
    assert "exceeds the limit" in error_of(response)
    assert post(rest, f"{MODEL}:predict", {"instances": [1.0]}).status_code == 200


def test_health_and_readiness(rest: httpx.Client) -> None:
    assert rest.get("/healthz").status_code == 200
    assert rest.get("/readyz").status_code == 200


def test_prometheus_metrics(rest: httpx.Client) -> None:
    post(rest, f"{MODEL}:predict", {"instances": [1.0]})
    post(rest, "/v1/models/nope:predict", {"instances": [1.0]})
    response = rest.get("/monitoring/prometheus/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert "# TYPE :tensorflow:serving:request_count counter" in text
    assert ':tensorflow:serving:request_count{model_name="half_plus_two",status="OK"}' in text
    assert ':tensorflow:serving:request_count{model_name="nope",status="NOT_FOUND"}' in text
    assert (
        ':tensorflow:serving:request_latency_bucket{model_name="half_plus_two",'
        'API="predict",entrypoint="REST",le="10"}' in text
    )
    wrong = rest.get("/monitoring/prometheus/metricsX")
    assert wrong.status_code == 400
    assert "Unexpected path" in error_of(wrong)


def test_fast_route_selection() -> None:
    """Only well-formed POST model calls within the size limit take the fast route."""
    from cloudserve_runtime.rest import RestApp, RestSettings

    app = RestApp(None, None, None, RestSettings(max_body_bytes=100, enable_cors=True))  # type: ignore[arg-type]
    assert app.fast_headers == (
        b"content-type: application/json\r\naccess-control-allow-origin: *\r\n"
        b"access-control-allow-methods: POST, GET\r\naccess-control-allow-headers: Content-Type\r\n"
    )
    for path in (b"/v1/models/m:predict", b"/v1/models/m/versions/2:regress",
                 b"/V1/Models/m/labels/x:classify"):
        assert app.fast_route("POST", path, 100) is not None, path
        assert app.fast_route("POST", path, 101) is None
        assert app.fast_route("GET", path, 1) is None
    assert app.fast_route("POST", b"/v1/models/m:predict", 1) is app.fast_route(
        "POST", b"/v1/models/m:predict", 1
    )
    for path in (b"/v1/models/m:PREDICT", b"/v1/models/m/versions/99999999999999999999:predict",
                 b"/v1/models/m", b"/invocations", b"/v1/models/m:predict/x"):
        assert app.fast_route("POST", path, 1) is None, path
