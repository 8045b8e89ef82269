"""The fake's own App API rules, driven with raw HTTP."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Mapping
from typing import Any

import aiohttp
import pytest

from customerio_async import (
    APIClient,
)
from customerio_async.testing import FakeCustomerIO, Fault

from ._support import APP_KEY, email


async def raw(
    fake: FakeCustomerIO,
    method: str,
    path: str,
    body: Any = None,
    *,
    key: str | None = APP_KEY,
    data: bytes | None = None,
) -> tuple[int, Any]:
    headers: Mapping[str, str] = {"Authorization": f"Bearer {key}"} if key is not None else {}
    payload = data if data is not None else (b"" if body is None else json.dumps(body).encode())
    # A file-like body: aiohttp warns about raw-bytes bodies over 1 MiB.
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method, fake.url + path, data=io.BytesIO(payload), headers=headers
        ) as response,
    ):
        text = await response.read()
        return response.status, json.loads(text) if text else None


SEND = {"transactional_message_id": 1, "to": "a@b.co", "identifiers": {"id": "1"}}
HUGE_B64 = base64.b64encode(b"\0" * (2 * 1024 * 1024)).decode()


@pytest.mark.parametrize(
    ("path", "body", "status", "error"),
    [
        ("/v1/send/email", {**SEND, "headers": '[{"name":"X","value":"1"}]'}, 200, None),
        ("/v1/send/email", {**SEND, "headers": {"X": 1}}, 400, "headers must be"),
        (
            "/v1/send/email",
            {**SEND, "attachments": {"a.txt": "!!"}},
            400,
            'base64 encoded: "a.txt"',
        ),
        ("/v1/send/email", {**SEND, "attachments": {"a.txt": 5}}, 400, 'base64 encoded: "a.txt"'),
        ("/v1/send/email", {**SEND, "attachments": ["a"]}, 400, "attachments must be"),
        (
            "/v1/send/email",
            {**SEND, "attachments": {"x.BAT": "YQ=="}},
            403,
            "Forbidden file type bat",
        ),
        (
            "/v1/send/email",
            {**SEND, "attachments": {"big.bin": HUGE_B64}},
            413,
            "Total attachment size",
        ),
        (
            "/v1/send/email",
            {**SEND, "cc": ", ".join(f"c{i}@b.co" for i in range(15))},
            400,
            "too many recipients",
        ),
        ("/v1/send/email", {**SEND, "cc": 5}, 400, "must be strings"),
        (
            "/v1/send/email",
            {**SEND, "identifiers": {"id": "1", "email": "a@b.co"}},
            400,
            "exactly one",
        ),
        ("/v1/send/email", {**SEND, "identifiers": {"id": True}}, 400, "non-blank"),
        (
            "/v1/send/email",
            {"to": "a@b.co", "identifiers": {"id": "1"}},
            400,
            "transactional_message_id is required",
        ),
        ("/v1/send/email", {**SEND, "transactional_message_id": True}, 400, "integer or a trigger"),
        ("/v1/send/email", {**SEND, "send_at": "soon"}, 400, "integer unix"),
        ("/v1/send/email", {**SEND, "send_at": 99_999_999_999}, 400, "90 days"),
        ("/v1/send/email", {**SEND, "message_data": []}, 400, "must be an object"),
        ("/v1/send/email", {**SEND, "message_data": {"b": "x" * (1024 * 1024)}}, 413, "too large"),
        (
            "/v1/send/sms",
            {"transactional_message_id": 1, "identifiers": {"id": "1"}},
            400,
            "to is required",
        ),
        ("/v1/send/fax", SEND, 404, "unknown send channel"),
        ("/v1/send/email", [SEND], 400, "must be a JSON object"),
    ],
)
async def test_fake_send_rules(
    fake: FakeCustomerIO, path: str, body: Any, status: int, error: str | None
) -> None:
    got, payload = await raw(fake, "POST", path, body)
    assert got == status
    if error is None:
        assert set(payload) == {"delivery_id", "queued_at"}
    else:
        assert error in payload["meta"]["error"]


async def test_fake_send_body_framing(fake: FakeCustomerIO) -> None:
    assert (await raw(fake, "POST", "/v1/send/email", data=b"{nope"))[0] == 400
    assert (await raw(fake, "POST", "/v1/send/email", data=b" "))[0] == 400


async def test_fake_app_auth(fake: FakeCustomerIO) -> None:
    unauthorized = {"errors": [{"detail": "unauthorized", "status": "401"}]}
    assert await raw(fake, "POST", "/v1/send/email", SEND, key="wrong") == (401, unauthorized)
    assert await raw(fake, "POST", "/v1/send/email", SEND, key=None) == (401, unauthorized)
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            fake.url + "/v1/send/email", json=SEND, headers={"Authorization": f"Basic {APP_KEY}"}
        ) as response,
    ):
        assert response.status == 401
    assert fake.app_api_key == APP_KEY
    assert fake.sends == []


async def test_fake_in_app_can_be_disabled() -> None:
    async with FakeCustomerIO(app_api_key=APP_KEY, in_app_enabled=False) as fake:
        status, payload = await raw(fake, "POST", "/v1/send/in_app", SEND)
    assert status == 403
    assert "in-app" in payload["meta"]["error"]


@pytest.mark.parametrize(
    ("path", "body", "status", "detail", "pointer"),
    [
        (
            "/v1/campaigns/9/triggers",
            {"recipients": {}},
            422,
            "empty recipients filter is not valid",
            "/data/attributes/recipients",
        ),
        (
            "/v1/campaigns/9/triggers",
            {"ids": [str(i) for i in range(10_001)]},
            422,
            "more than 10000",
            "/data/attributes/ids",
        ),
        ("/v1/campaigns/9/triggers", {"ids": []}, 422, "non-empty array", "/data/attributes/ids"),
        (
            "/v1/campaigns/9/triggers",
            {"ids": [1]},
            422,
            "non-empty strings",
            "/data/attributes/ids",
        ),
        (
            "/v1/campaigns/9/triggers",
            {"ids": ["1"], "emails": ["a@b.co"]},
            422,
            "only one audience",
            "/data",
        ),
        (
            "/v1/campaigns/9/triggers",
            {"emails": ["a@b.co"], "id_ignore_missing": True},
            422,
            "not valid for this audience",
            "/data/attributes/emails",
        ),
        (
            "/v1/campaigns/9/triggers",
            {"ids": ["1"], "id_ignore_missing": 1},
            422,
            "must be a boolean",
            "/data/attributes/id_ignore_missing",
        ),
        (
            "/v1/campaigns/9/triggers",
            {"data": []},
            422,
            "data must be an object",
            "/data/attributes/data",
        ),
        (
            "/v1/campaigns/9/triggers",
            {"data": {"b": "x" * 50_000}},
            422,
            "larger than 50000",
            "/data/attributes/data",
        ),
        (
            "/v1/campaigns/9/triggers",
            {"data_file_url": 3},
            422,
            "must be a URL",
            "/data/attributes/data_file_url",
        ),
        (
            "/v1/campaigns/9/triggers",
            {"per_user_data": [1]},
            422,
            "must be objects",
            "/data/attributes/per_user_data",
        ),
        (
            "/v1/campaigns/9/triggers",
            {"per_user_data": [{"id": 1}]},
            422,
            "exactly one of id or email",
            "/data/attributes/per_user_data",
        ),
        (
            "/v1/campaigns/9/triggers",
            {"per_user_data": [{"id": "1", "data": 1}]},
            422,
            "must be an object",
            "/data/attributes/per_user_data",
        ),
        ("/v1/campaigns/9/triggers", [1], 422, "JSON object", "/data"),
        ("/v1/campaigns/x/triggers", {}, 404, "does not exist", None),
        ("/v1/campaigns/0/triggers", {}, 404, "does not exist", None),
    ],
)
async def test_fake_trigger_rules(
    fake: FakeCustomerIO,
    path: str,
    body: Any,
    status: int,
    detail: str,
    pointer: str | None,
) -> None:
    got, payload = await raw(fake, "POST", path, body)
    assert got == status
    (error,) = payload["errors"]
    assert detail in error["detail"]
    assert error["status"] == str(status)
    assert error.get("source", {}).get("pointer") == pointer
    assert fake.triggers == []


async def test_fake_trigger_errors_endpoint(fake: FakeCustomerIO) -> None:
    status, created = await raw(
        fake, "POST", "/v1/campaigns/9/triggers", {"per_user_data": [{"email": "x@b.co"}]}
    )
    assert status == 200
    errors_path = f"/v1/campaigns/9/triggers/{created['id']}/errors"
    assert await raw(fake, "GET", errors_path) == (
        200,
        {"errors": ["line 1: no person with email 'x@b.co'"]},
    )
    assert (await raw(fake, "GET", "/v1/campaigns/8/triggers/1/errors"))[0] == 404
    assert (await raw(fake, "GET", "/v1/campaigns/9/triggers/99/errors"))[0] == 404
    assert (await raw(fake, "GET", errors_path + "?start=x"))[0] == 400
    assert (await raw(fake, "GET", errors_path + "?limit=0"))[0] == 400
    # Empty body is the default audience.
    assert (await raw(fake, "POST", "/v1/campaigns/9/triggers", data=b""))[0] == 200


async def test_fake_clear_forgets_app_state(fake: FakeCustomerIO, api: APIClient) -> None:
    await api.send_email(email())
    await api.trigger_broadcast(3)
    fake.clear()
    assert (fake.sends, fake.triggers) == ([], [])


def test_fake_rejects_a_negative_broadcast_interval() -> None:
    with pytest.raises(ValueError, match="broadcast_interval"):
        FakeCustomerIO(broadcast_interval=-1.0)


async def test_fake_app_faults_use_the_app_envelope() -> None:
    async with FakeCustomerIO(app_api_key=APP_KEY, v1_error_envelope="meta.errors") as fake:
        fake.add_fault(Fault(status=503, match="/v1/send/email"))
        assert await raw(fake, "POST", "/v1/send/email", SEND) == (
            503,
            {"meta": {"error": "Service Unavailable"}},
        )
        assert await raw(fake, "GET", "/v1/send/email") == (
            405,
            {"meta": {"error": "method GET is not allowed here"}},
        )
        assert await raw(fake, "POST", "/v1/nothing", SEND) == (
            404,
            {"meta": {"error": "no such endpoint"}},
        )
