"""``customerio-async verify-webhook``."""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
from pathlib import Path

import pytest

from customerio_async import _cli

KEY = "whsec-test-key"


def signed(body: bytes, ts: int, key: str = KEY) -> str:
    return hmac.new(key.encode(), b"v0:%d:" % ts + body, hashlib.sha256).hexdigest()


def test_verify_webhook(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    event = {
        "event_id": "01HXYZ",
        "object_type": "email",
        "metric": "delivered",
        "timestamp": 1_760_000_000,
        "data": {
            "identifiers": {"id": "42", "email": "ada@example.com"},
            "delivery_id": "dlv1",
            "campaign_id": 7,
        },
    }
    body = json.dumps(event).encode()
    body_file = tmp_path / "body.json"
    body_file.write_bytes(body)
    ts = 1_760_000_000
    base = ["verify-webhook", "--body", str(body_file), "--key", KEY, "--now", str(ts + 5)]
    assert _cli.main([*base, "--timestamp", str(ts), "--signature", signed(body, ts)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("valid\n")
    assert "email delivered" in out
    assert "dlv1" in out
    assert "2025-10-09T08:53:20Z" in out
    assert "identifiers              id, email" in out
    assert "ada@example.com" not in out

    headers = tmp_path / "headers.txt"
    headers.write_text(
        f"POST /webhooks HTTP/1.1\nX-CIO-Timestamp: {ts}\nx-cio-signature: {signed(body, ts)}\n"
    )
    assert _cli.main([*base, "--headers", str(headers)]) == 0
    capsys.readouterr()

    assert _cli.main([*base, "--timestamp", str(ts), "--signature", "00" * 32]) == 1
    assert capsys.readouterr().out.startswith("invalid: bad_signature: ")
    late = ["--now", str(ts + 301), "--timestamp", str(ts), "--signature", signed(body, ts)]
    assert _cli.main([*base, *late]) == 1
    assert capsys.readouterr().out.startswith("invalid: too_old: ")
    assert _cli.main([*base, "--signature", signed(body, ts)]) == 1
    assert "invalid: missing_header" in capsys.readouterr().out

    not_event = tmp_path / "not-event.json"
    not_event.write_bytes(b"[]")
    argv = ["verify-webhook", "--body", str(not_event), "--key", KEY, "--now", str(ts)]
    assert _cli.main([*argv, "--timestamp", str(ts), "--signature", signed(b"[]", ts)]) == 1
    assert "invalid: invalid_payload" in capsys.readouterr().out

    monkeypatch.delenv("CUSTOMERIO_WEBHOOK_SIGNING_KEY", raising=False)
    assert _cli.main(["verify-webhook", "--body", str(body_file)]) == 2
    assert "missing signing key" in capsys.readouterr().err
    monkeypatch.setenv("CUSTOMERIO_WEBHOOK_SIGNING_KEY", KEY)
    assert _cli.main(["verify-webhook", "--body", str(tmp_path / "nope")]) == 2
    assert "cannot read" in capsys.readouterr().err

    class Stdin:
        buffer = __import__("io").BytesIO(body)

    monkeypatch.setattr(sys, "stdin", Stdin)
    sig = ["--timestamp", str(ts), "--signature", signed(body, ts), "--now", str(ts)]
    assert _cli.main(["verify-webhook", "--body", "-", *sig]) == 0
