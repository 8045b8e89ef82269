"""ULIDs: the event ``id`` Customer.io de-duplicates on, and the one Crockford encoder.

A ULID is 26 Crockford base32 characters: 10 for the millisecond timestamp, 16 for 80
random bits. The random part comes from the operating system (``os.urandom``), never from
Python's ``random`` module: an app that calls ``random.seed()`` (tests, simulations) would
otherwise generate the same ids again, and Customer.io silently discards an event whose id it
has seen. A process-wide buffer of random Crockford characters is refilled from
``os.urandom`` in chunks (one system call per 512 ids) and is thrown away in a forked
child, which must never repeat its parent's ids (gunicorn's preload, multiprocessing).
"""

from __future__ import annotations

import os
import re
import time

__all__ = ["CROCKFORD", "ULID_PATTERN", "encode_crockford", "is_ulid", "new_ulid"]

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ULID_PATTERN = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{25}")

# Every byte maps to the Crockford digit of its low 5 bits: 256 is a multiple of 32, so
# each character of the translated buffer carries 5 uniformly random bits.
_TABLE = bytes(ord(CROCKFORD[b & 31]) for b in range(256))
_BATCH = 512  # random parts made per refill: one os.urandom call per 512 ULIDs (~40 KB)

# Random 16-character tails, consumed from the end. Refilled in bulk; emptied in a forked
# child, which must draw its own bytes.
_tails: list[str] = []
_pop = _tails.pop
_last_ms = -1  # the millisecond of the cached time prefix
_prefix = ""
_time_ns = time.time_ns


def _refill() -> None:
    chars = os.urandom(16 * _BATCH).translate(_TABLE).decode("ascii")
    _tails.extend([chars[i : i + 16] for i in range(0, 16 * _BATCH, 16)])


def _forget_in_child() -> None:
    global _last_ms
    _tails.clear()
    _last_ms = -1


os.register_at_fork(after_in_child=_forget_in_child)


def encode_crockford(value: int, length: int) -> str:
    """``value`` as ``length`` Crockford base32 digits, most significant first."""
    return "".join(CROCKFORD[(value >> (5 * i)) & 31] for i in range(length - 1, -1, -1))


def new_ulid(now: float | None = None) -> str:
    """A new ULID: 48-bit millisecond time + 80 bits of OS randomness.

    Costs about 0.2 µs: the 10-character time prefix is encoded once per millisecond and the
    16 random characters were made in bulk.

    Args:
        now: Unix time in seconds to stamp (default: the current time).
    """
    global _last_ms, _prefix
    ms = _time_ns() // 1_000_000 if now is None else int(now * 1000)
    if ms != _last_ms:
        _last_ms = ms
        _prefix = encode_crockford(ms, 10)
    try:
        return _prefix + _pop()
    except IndexError:
        _refill()
        return _prefix + _pop()


def is_ulid(value: object) -> bool:
    """Whether ``value`` is a string shaped like a ULID (any case)."""
    return isinstance(value, str) and ULID_PATTERN.fullmatch(value.upper()) is not None
