"""The CLI's one LRO poller against a fake transport: ARM's header rules, timing, terminal states, final reads.

The commands that use it are tested end to end against a live server (test_vmss_cli, test_deployment_cli, ...);
here each rule is pinned on its own, with answers a live server would not give on demand (HTTP-date Retry-After,
Canceled, a status body without ``status``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from altostratus.cli.lro import (
    DEFAULT_INTERVAL,
    OperationFailed,
    Poller,
    PollError,
    PollTimeout,
    retry_after,
)

BASE = "https://cloud.test"
STATUS = f"{BASE}/operations/1"
RESULT = f"{BASE}/operationResults/1"
RESOURCE = f"{BASE}/sets/web?api-version=2020-06-01"

Answer = tuple[int, dict[str, str], Any]


class Fake:
    """A server that answers each URL from a script, the last answer repeating; it records every GET."""

    def __init__(self, script: dict[str, list[Answer]]) -> None:
        self.script = {url: iter(answers) for url, answers in script.items()}
        self.last: dict[str, Answer] = {}
        self.gets: list[str] = []
        self.sleeps: list[float] = []
        self.now = 0.0
        self.http = httpx.Client(transport=httpx.MockTransport(self.answer))

    def answer(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        if request.method == "GET":
            self.gets.append(url)
        self.last[url] = next(self.script[url], None) or self.last[url]
        status, headers, body = self.last[url]
        content = b"" if body is None else json.dumps(body).encode()
        return httpx.Response(status, headers=headers, content=content)

    def start(self, method: str, url: str, **kwargs: Any) -> Poller:
        initial = self.http.request(method, url)
        self.gets.clear()
        return Poller(self.http.get, initial, sleep=self.sleep, clock=lambda: self.now, **kwargs)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def accepted(**extra: str) -> Answer:
    return 202, {"Azure-AsyncOperation": STATUS, "Location": RESULT, "Retry-After": "1", **extra}, None


def status(state: str, retry: str | None = "1", **body: Any) -> Answer:
    return 200, ({"Retry-After": retry} if retry else {}), {"status": state, **body}


@pytest.fixture
def progress() -> Iterator[tuple[list[str], Callable[[dict[str, Any]], None]]]:
    seen: list[str] = []
    yield seen, lambda s: seen.append(s["status"])


def test_azure_async_operation_wins_over_location(progress: Any) -> None:
    fake = Fake({RESOURCE: [accepted()], STATUS: [status("InProgress"), status("InProgress"), status("Succeeded")]})
    seen, show = progress
    outcome = fake.start("DELETE", RESOURCE).wait(show)
    assert fake.gets == [STATUS] * 3, "a DELETE polls the status URL only and reads nothing after"
    assert seen == ["InProgress", "InProgress", "Succeeded"]
    assert outcome.status == {"status": "Succeeded"} and outcome.result is None


def test_post_reads_its_location_once_at_the_end_204_is_no_result() -> None:
    fake = Fake({RESOURCE: [accepted()], STATUS: [status("Running"), status("Succeeded")], RESULT: [(204, {}, None)]})
    outcome = fake.start("POST", RESOURCE).wait()
    assert fake.gets == [STATUS, STATUS, RESULT]
    assert outcome.result is None and outcome.status["status"] == "Succeeded"


def test_post_with_the_status_body_as_result_reads_nothing_more() -> None:
    fake = Fake({RESOURCE: [accepted()], STATUS: [status("Succeeded", properties={"n": 1})]})
    outcome = fake.start("POST", RESOURCE, final_state_via="azure-async-operation").wait()
    assert fake.gets == [STATUS] and outcome.result is None
    assert outcome.status == {"status": "Succeeded", "properties": {"n": 1}}


def test_put_reads_the_resource_again_when_done() -> None:
    creating = (201, {"Azure-AsyncOperation": STATUS}, {"name": "web", "properties": {"provisioningState": "Creating"}})
    done = (200, {}, {"name": "web", "properties": {"provisioningState": "Succeeded"}})
    fake = Fake({RESOURCE: [creating, done], STATUS: [status("InProgress"), status("succeeded")]})
    outcome = fake.start("PUT", RESOURCE).wait()
    assert fake.gets == [STATUS, STATUS, RESOURCE], "terminal states are matched without regard to case"
    assert outcome.result == done[2]


def test_put_follows_resource_location_when_the_status_names_it() -> None:
    elsewhere = f"{BASE}/sets/web-renamed"
    patched = (200, {"Azure-AsyncOperation": STATUS}, {"properties": {"provisioningState": "Updating"}})
    script = {
        RESOURCE: [patched],
        STATUS: [status("Succeeded", resourceLocation=elsewhere)],
        elsewhere: [(200, {}, {"name": "web-renamed"})],
    }
    fake = Fake(script)
    assert fake.start("PATCH", RESOURCE).wait().result == {"name": "web-renamed"}
    assert fake.gets == [STATUS, elsewhere]


@pytest.mark.parametrize("state", ["Failed", "Canceled"])
def test_failed_and_canceled_raise_with_the_error_body(state: str) -> None:
    error = {"code": "QuotaExceeded", "message": "Too many cores.", "target": "sku", "details": [{"code": "X"}]}
    fake = Fake({RESOURCE: [accepted()], STATUS: [status("InProgress"), status(state, None, error=error)]})
    with pytest.raises(OperationFailed) as caught:
        fake.start("POST", RESOURCE).wait()
    exc = caught.value
    assert exc.state == state and exc.error == error
    assert (exc.code, exc.message, exc.target) == ("QuotaExceeded", "Too many cores.", "sku")
    assert exc.body == {"status": state, "error": error}
    assert RESULT not in fake.gets, "a failed operation has no result to read"


def test_a_failure_without_an_error_still_says_what_happened() -> None:
    fake = Fake({RESOURCE: [accepted()], STATUS: [status("Canceled", None)]})
    with pytest.raises(OperationFailed) as caught:
        fake.start("DELETE", RESOURCE).wait()
    assert caught.value.error == {"code": "Canceled", "message": "The operation failed."}


def test_retry_after_is_honoured_between_polls() -> None:
    fake = Fake(
        {
            RESOURCE: [accepted(**{"Retry-After": "3"})],
            STATUS: [
                status("InProgress", "2"),
                status("InProgress", None),
                status("InProgress", "0"),
                status("Succeeded"),
            ],
        }
    )
    fake.start("DELETE", RESOURCE).wait()
    # 3 s as the first answer asked, then 2 s, then the poller's own interval (none given; 0 counts as none).
    assert fake.sleeps == [3.0, 2.0, DEFAULT_INTERVAL, DEFAULT_INTERVAL]


def test_retry_after_forms() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after(httpx.Headers({"Retry-After": "7"})) == 7.0
    assert (
        retry_after(httpx.Headers({"Retry-After": format_datetime(now + timedelta(seconds=5), usegmt=True)}), now) == 5
    )
    assert (
        retry_after(httpx.Headers({"Retry-After": format_datetime(now - timedelta(seconds=5), usegmt=True)}), now) == 0
    )
    assert retry_after(httpx.Headers({"Retry-After": "0", "retry-after-ms": "250"})) == 0.25
    assert retry_after(httpx.Headers({"x-ms-retry-after-ms": "1500"})) == 1.5
    assert retry_after(httpx.Headers({"Retry-After": "soon"})) is None
    assert retry_after(httpx.Headers({})) is None


def test_location_only_202_until_done_and_a_new_location_replaces_the_url(progress: Any) -> None:
    moved = f"{BASE}/operationResults/1b"
    script = {
        RESOURCE: [(202, {"Location": RESULT, "Retry-After": "2"}, None)],
        RESULT: [(202, {"Location": moved}, None)],
        moved: [(202, {}, None), (200, {}, {"changes": []})],
    }
    fake = Fake(script)
    seen, show = progress
    outcome = fake.start("POST", RESOURCE).wait(show)
    assert fake.gets == [RESULT, moved, moved]
    assert fake.sleeps == [2.0, DEFAULT_INTERVAL, DEFAULT_INTERVAL]
    assert seen == ["InProgress", "InProgress", "Succeeded"]
    assert outcome.result == {"changes": []}


def test_location_only_an_error_answer_is_the_operations_failure() -> None:
    error = {"code": "InvalidTemplate", "message": "Line 3."}
    fake = Fake({RESOURCE: [(202, {"Location": RESULT}, None)], RESULT: [(400, {}, {"error": error})]})
    with pytest.raises(OperationFailed) as caught:
        fake.start("POST", RESOURCE).wait()
    assert caught.value.error == error and caught.value.status == 400


def test_put_without_headers_polls_the_resource_until_its_state_ends(progress: Any) -> None:
    def resource(state: str) -> Answer:
        return 200, {}, {"properties": {"provisioningState": state}}

    fake = Fake({RESOURCE: [(201, {}, {"properties": {"provisioningState": "Creating"}}), resource("Updating"),
                            resource("Succeeded")]})  # fmt: skip
    seen, show = progress
    outcome = fake.start("PUT", RESOURCE).wait(show)
    assert fake.gets == [RESOURCE, RESOURCE] and seen == ["Creating", "Updating", "Succeeded"]
    assert outcome.result == {"properties": {"provisioningState": "Succeeded"}}

    failed = {"properties": {"provisioningState": "Failed", "error": {"code": "Boom", "message": "no"}}}
    fake = Fake({RESOURCE: [(201, {}, None), (200, {}, failed)]})
    with pytest.raises(OperationFailed) as caught:
        fake.start("PUT", RESOURCE).wait()
    assert caught.value.error == {"code": "Boom", "message": "no"}


def test_nothing_to_poll_is_done_at_once() -> None:
    fake = Fake({RESOURCE: [(202, {}, None)]})
    outcome = fake.start("POST", RESOURCE).wait()
    assert fake.gets == [] and fake.sleeps == [] and outcome.status == {"status": "Succeeded"}
    fake = Fake({RESOURCE: [(200, {}, {"value": 1})]})
    assert fake.start("POST", RESOURCE).wait().result == {"value": 1}


def test_timeout_stops_waiting_and_names_the_operation() -> None:
    fake = Fake({RESOURCE: [accepted(**{"Retry-After": "4"})], STATUS: [status("InProgress", "4")]})
    with pytest.raises(PollTimeout) as caught:
        fake.start("DELETE", RESOURCE).wait(timeout=10)
    assert fake.sleeps == [4.0, 4.0, 2.0], "the last pause is cut to the time left"
    assert caught.value.code == "OperationTimeout" and STATUS in caught.value.message


def test_unreadable_status_is_a_poll_error_not_a_failure() -> None:
    fake = Fake({RESOURCE: [accepted()], STATUS: [(200, {}, {"name": "1"})]})
    with pytest.raises(PollError) as caught:
        fake.start("DELETE", RESOURCE).wait()
    assert caught.value.code == "InvalidOperationStatus"
    assert not isinstance(caught.value, OperationFailed)

    error = {"code": "OperationNotFound", "message": "gone"}
    fake = Fake({RESOURCE: [accepted()], STATUS: [(404, {}, {"error": error})]})
    with pytest.raises(PollError) as caught:
        fake.start("DELETE", RESOURCE).wait()
    assert caught.value.error == error and caught.value.status == 404


def test_an_error_answer_cannot_start_a_poller() -> None:
    fake = Fake({RESOURCE: [(409, {}, {"error": {"code": "Conflict", "message": "busy"}})]})
    with pytest.raises(PollError) as caught:
        fake.start("PUT", RESOURCE)
    assert caught.value.code == "Conflict"
