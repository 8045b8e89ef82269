"""Lines become operations: deterministic event ids."""

from __future__ import annotations

import re

from customerio_async._cli.operations import derive_event_id

ULID_RE = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{25}")


def test_derived_event_ids_are_valid_deterministic_ulids() -> None:
    a = derive_event_id("f" * 64, 7, b'{"x":1}', 1_690_000_000)
    assert ULID_RE.fullmatch(a)
    assert a == derive_event_id("f" * 64, 7, b'{"x":1}', 1_690_000_000)
    assert a != derive_event_id("f" * 64, 8, b'{"x":1}', 1_690_000_000)
    assert a != derive_event_id("e" * 64, 7, b'{"x":1}', 1_690_000_000)
    # The time part is the event timestamp in milliseconds: ULIDs sort like the events.
    later = derive_event_id("f" * 64, 7, b'{"x":1}', 1_690_000_001)
    assert a[:10] < later[:10]
    no_time = derive_event_id("f" * 64, 7, b"", None)
    assert no_time.startswith("0000000000")
    assert ULID_RE.fullmatch(no_time)
    assert ULID_RE.fullmatch(derive_event_id("0", 1, b"", 99_999_999_999))
