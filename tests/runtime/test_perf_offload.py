"""A large predict body is decoded (and its response encoded) off the event loop.

A real server gets a ~24 MB row-format predict request while a second client keeps asking for
``/healthz`` and making small predicts. When decoding or encoding ran on the event loop, every
health check waited for them: the longest health-check wait was most of the large request's
time. Off the loop, health checks keep being answered throughout. The check is relative (the
longest wait against the large request's own duration), so a slow or busy machine does not
make it flaky.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.runtime.conftest import HALF_PLUS_TWO, serving

pytestmark = pytest.mark.slow

ROWS = 3_000_000  # "0.1234, " per row: about 24 MB of JSON


def _large_body() -> tuple[bytes, np.ndarray]:
    values = np.round(np.random.default_rng(3).random(ROWS), 4)
    return json.dumps({"instances": values.tolist()}).encode(), values


def test_health_checks_and_small_predicts_answer_while_a_large_body_is_processed(
    tmp_path: Path,
) -> None:
    body, values = _large_body()
    with serving(
        "--model_name=half_plus_two",
        f"--model_base_path={HALF_PLUS_TWO}",
        f"--rest_api_max_body_bytes={64 * 1024 * 1024}",
        log_dir=tmp_path,
    ) as server:
        url = f"{server.rest_url}/v1/models/half_plus_two:predict"
        big: dict[str, object] = {}

        def send_large() -> None:
            started = time.monotonic()
            with httpx.Client(timeout=300.0) as client:
                response = client.post(url, content=body)
            big.update(started=started, ended=time.monotonic(), response=response)

        with httpx.Client(base_url=server.rest_url, timeout=300.0) as small:
            assert small.get("/healthz").status_code == 200  # connection open before the load
            sender = threading.Thread(target=send_large)
            sender.start()
            waits: list[tuple[float, float]] = []  # (sent, answered) of each small request
            predicted = []
            while sender.is_alive():
                sent = time.monotonic()
                assert small.get("/healthz").status_code == 200
                answer = small.post(url, json={"instances": [1.0, 2.0]})
                waits.append((sent, time.monotonic()))
                predicted.append(answer.json())
            sender.join()

    response = big["response"]
    assert isinstance(response, httpx.Response)
    assert response.status_code == 200, response.text[:500]
    predictions = np.array(response.json()["predictions"])
    np.testing.assert_allclose(predictions, values * 0.5 + 2.0, rtol=1e-6)
    assert all(answer == {"predictions": [2.5, 3.0]} for answer in predicted)

    started, ended = big["started"], big["ended"]
    assert isinstance(started, float) and isinstance(ended, float)
    during = [(sent, done) for sent, done in waits if started < done and sent < ended]
    assert len(during) >= 3, f"only {len(during)} small requests answered in {ended - started} s"
    longest = max(done - sent for sent, done in during)
    assert longest < 0.5 * (ended - started), (
        f"a health check waited {longest:.2f} s of the large request's {ended - started:.2f} s"
    )
