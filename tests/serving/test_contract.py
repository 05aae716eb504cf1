"""The SageMaker inference contract, for every agent, against the real server: /ping,
/invocations with one JSON record, a list and CSV rows, and every refusal (400, 413,
415, 500) as one line of JSON after which the server keeps answering."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx
import pytest
from serving.helpers import AGENTS, Serve, csv_row

from agents.serving.protocol import Predictor

JSON = {"content-type": "application/json"}
CSV = {"content-type": "text/csv"}


def two_records(predictor: Predictor) -> list[dict[str, Any]]:
    """Two valid records (a stateful predictor's second one comes a minute later)."""
    first = predictor.example_request()
    second = dict(first)
    if predictor.agent == "anomaly":
        second["timestamp"] = "2024-01-15T12:01:00+00:00"
    if predictor.agent == "security":
        second.update(eventTime="2024-06-14T03:13:09Z", eventID="second")
    return [first, second]


def assert_error(response: httpx.Response, status: int, *needles: str) -> str:
    """``status`` with one line of JSON ``{"error": ...}`` holding every needle, no traceback."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert "\n" not in response.text and "Traceback" not in response.text
    body = response.json()
    assert list(body) == ["error"]
    for needle in needles:
        assert needle in body["error"], (needle, body["error"])
    return str(body["error"])


def assert_answers(predictor: Predictor, answers: Any, count: int) -> None:
    assert isinstance(answers, list) and len(answers) == count
    for answer in answers:
        assert answer["model_version"] == predictor.model_version


@pytest.fixture(params=AGENTS)
def served(
    request: pytest.FixtureRequest, make_predictor: Callable[[str], Predictor], serve: Serve
) -> Iterator[tuple[Predictor, httpx.Client]]:
    predictor = make_predictor(request.param)
    with serve(predictor) as http:
        yield predictor, http


def test_ping_answers_once_loaded(served: tuple[Predictor, httpx.Client]) -> None:
    predictor, http = served
    response = http.get("/ping")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "agent": predictor.agent,
        "model_version": predictor.model_version,
    }


def test_one_json_record_gets_one_object_and_a_list_gets_a_list(
    served: tuple[Predictor, httpx.Client],
) -> None:
    predictor, http = served
    first, second = two_records(predictor)
    one = http.post("/invocations", content=json.dumps(first), headers=JSON)
    assert one.status_code == 200, one.text
    assert isinstance(one.json(), dict)
    assert_answers(predictor, [one.json()], 1)
    many = http.post("/invocations", content=json.dumps([second, second]), headers=JSON)
    assert many.status_code == 200, many.text
    assert_answers(predictor, many.json(), 2)
    assert set(many.json()[0]) == set(one.json())


def csv_body(predictor: Predictor, records: Sequence[dict[str, Any]], header: bool) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    if header:
        writer.writerow(predictor.csv_columns)
    for record in records:
        writer.writerow(csv_row(predictor, record))
    return out.getvalue()


@pytest.mark.parametrize("header", [True, False], ids=["header", "no-header"])
def test_csv_rows_in_column_order_with_or_without_a_header(
    served: tuple[Predictor, httpx.Client], header: bool
) -> None:
    predictor, http = served
    records = two_records(predictor)
    response = http.post("/invocations", content=csv_body(predictor, records, header), headers=CSV)
    assert response.status_code == 200, response.text
    assert_answers(predictor, response.json(), 2)
    if predictor.agent in ("scaling", "cost-rl"):  # stateless: CSV answers as JSON does
        as_json = http.post("/invocations", content=json.dumps(records), headers=JSON)
        assert response.json() == as_json.json()


BAD_BODIES = {
    "not JSON": (b"{not json", "not valid JSON"),
    "NaN": (b'{"value": NaN}', "NaN"),
    "unknown field": (b'{"no_such_field": 1}', "no_such_field: unknown field; allowed: "),
    "a number": (b"3", "allowed: one record"),
    "empty list": (b"[]", "allowed: one record"),
    "not UTF-8": (b'{"a": "\xff"}', "UTF-8"),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_a_bad_body_is_400_then_a_good_one_is_answered(
    served: tuple[Predictor, httpx.Client], case: str
) -> None:
    predictor, http = served
    body, needle = BAD_BODIES[case]
    assert_error(http.post("/invocations", content=body, headers=JSON), 400, needle)
    good = http.post("/invocations", content=json.dumps(predictor.example_request()), headers=JSON)
    assert good.status_code == 200, good.text


def test_a_failing_field_is_named_with_its_record(served: tuple[Predictor, httpx.Client]) -> None:
    predictor, http = served
    good = predictor.example_request()
    field = next(iter(predictor.request_model.model_fields))  # the first declared field
    bad = {**good, field: {"an": "object"}}
    message = assert_error(
        http.post("/invocations", content=json.dumps([good, bad]), headers=JSON), 400, field
    )
    assert message.startswith(f"record 2: {field}")
    assert_error(http.post("/invocations", content="1,2\n", headers=CSV), 400, "row 1: 2 cells")


def test_too_large_by_header_and_by_stream_is_413(
    make_predictor: Callable[[str], Predictor], serve: Serve
) -> None:
    predictor = make_predictor("cost-rl")
    body = json.dumps(predictor.example_request()).encode()
    limit = len(body) + 10
    big = body + b" " * 20  # still valid JSON, over the limit
    with serve(predictor, max_body_bytes=limit) as http:
        assert_error(http.post("/invocations", content=big, headers=JSON), 413, f"{limit:,}")

        def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer
            yield big[:20]
            yield big[20:]

        streamed = http.post("/invocations", content=chunks(), headers=JSON)
        assert "content-length" not in streamed.request.headers
        assert_error(streamed, 413, f"at most {limit:,}")
        assert http.post("/invocations", content=body, headers=JSON).status_code == 200


@pytest.mark.parametrize("kind", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_another_content_type_is_415(served: tuple[Predictor, httpx.Client], kind: str) -> None:
    predictor, http = served
    body = json.dumps(predictor.example_request())
    response = http.post("/invocations", content=body, headers={"content-type": kind})
    assert_error(response, 415, "application/json, text/csv")
    assert http.post("/invocations", content=body, headers=JSON).status_code == 200


class Failing:
    """A predictor whose model fails on every other request."""

    def __init__(self, inner: Predictor) -> None:
        self.inner = inner
        self.agent = inner.agent
        self.model_version = inner.model_version
        self.request_model = inner.request_model
        self.csv_columns = inner.csv_columns
        self.calls = 0

    def predict(self, records: Sequence[Any]) -> list[dict[str, Any]]:
        self.calls += 1
        if self.calls % 2:
            raise RuntimeError("secret internal detail")
        return self.inner.predict(records)

    def example_request(self) -> dict[str, Any]:
        return self.inner.example_request()


def test_a_model_failure_is_500_without_a_traceback_then_served(
    make_predictor: Callable[[str], Predictor],
    serve: Serve,
    caplog: pytest.LogCaptureFixture,
) -> None:
    predictor = Failing(make_predictor("cost-rl"))
    body = json.dumps(predictor.example_request())
    with serve(predictor) as http:
        message = assert_error(http.post("/invocations", content=body, headers=JSON), 500)
        assert "secret" not in message and "cost-rl" in message
        assert http.post("/invocations", content=body, headers=JSON).status_code == 200
    assert "secret internal detail" in caplog.text  # the traceback is logged server-side
    assert "Traceback" in caplog.text


def test_example_requests_validate(make_predictor: Callable[[str], Predictor]) -> None:
    for agent in AGENTS:
        predictor = make_predictor(agent)
        record = predictor.request_model.model_validate(predictor.example_request())
        assert len(predictor.predict([record])) == 1
