"""Random bodies sent to the REST API never give a 5xx and never kill the server."""

from __future__ import annotations

import json

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.runtime.conftest import ServerProcess

PATHS = [
    "/v1/models/half_plus_two:predict",
    "/v1/models/half_plus_two:classify",
    "/v1/models/half_plus_two:regress",
    "/v1/models/half_plus_two/versions/123:predict",
    "/v1/models/other:predict",
]
SIGNATURES = st.sampled_from(
    ["serving_default", "classify_x_to_y", "regress_x_to_y", "regress_x2_to_y3", "x", ""]
)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8),
    st.fixed_dictionaries({"b64": st.text(max_size=8)}),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(["x", "inputs", "b64", "y", "x2"]), inner, max_size=3),
    ),
    max_leaves=12,
)
BODIES = st.one_of(
    st.fixed_dictionaries({"instances": VALUES}, optional={"signature_name": SIGNATURES}),
    st.fixed_dictionaries({"inputs": VALUES}, optional={"signature_name": SIGNATURES}),
    st.fixed_dictionaries({"examples": VALUES},
                          optional={"signature_name": SIGNATURES, "context": VALUES}),
    st.dictionaries(st.text(max_size=6), VALUES, max_size=3),
    VALUES,
)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(path=st.sampled_from(PATHS), body=BODIES)
def test_random_json_never_5xx(rest: httpx.Client, path: str, body: object) -> None:
    response = rest.post(path, content=json.dumps(body))
    assert response.status_code < 500, (body, response.text)
    assert "error" in response.json() or response.status_code == 200


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(path=st.sampled_from(PATHS), body=st.binary(max_size=64))
def test_random_bytes_never_5xx(rest: httpx.Client, path: str, body: bytes) -> None:
    response = rest.post(path, content=body)
    assert response.status_code < 500, (body, response.text)


def test_server_still_alive(hp2: ServerProcess, rest: httpx.Client) -> None:
    assert hp2.proc.poll() is None
    assert rest.get("/healthz").status_code == 200
    ok = rest.post(PATHS[0], content=json.dumps({"instances": [[1.0]]}))
    assert ok.json() == {"predictions": [[2.5]]}
