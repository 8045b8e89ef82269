"""ULIDs: the event ``id`` Customer.io de-duplicates on, and the one Crockford encoder.

A ULID is 26 Crockford base32 characters: 10 for the millisecond timestamp, 16 for 80
random bits. The random part comes from the operating system (``os.urandom``), never from
Python's ``random`` module: an app that calls ``random.seed()`` (tests, simulations) would
otherwise generate the same ids again, and Customer.io silently discards an event whose id it
has seen. A process-wide buffer of random Crockford characters is refilled from
``os.urandom`` in large chunks (one system call per 4,096 ids) and is thrown away in a forked
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
_CHUNK = 16 * 4096  # random characters fetched per refill: 4,096 ULIDs


class _Entropy:
    """The per-process buffer of random Crockford characters."""

    __slots__ = ("chars", "last_ms", "pos", "prefix")

    def __init__(self) -> None:
        self.chars = ""
        self.pos = 0
        self.last_ms = -1
        self.prefix = ""

    def reset(self) -> None:
        # A forked child starts empty, so it draws fresh bytes from its own os.urandom.
        self.chars = ""
        self.pos = 0

    def refill(self) -> None:
        self.chars = os.urandom(_CHUNK).translate(_TABLE).decode("ascii")
        self.pos = 0


_state = _Entropy()
os.register_at_fork(after_in_child=_state.reset)


def encode_crockford(value: int, length: int) -> str:
    """``value`` as ``length`` Crockford base32 digits, most significant first."""
    return "".join(CROCKFORD[(value >> (5 * i)) & 31] for i in range(length - 1, -1, -1))


def new_ulid(now: float | None = None) -> str:
    """A new ULID: 48-bit millisecond time + 80 bits of OS randomness.

    Costs about 0.2 µs: the 10-character time prefix is encoded once per millisecond and the
    16 random characters are a slice of the buffer.

    Args:
        now: Unix time in seconds to stamp (default: the current time).
    """
    state = _state
    ms = time.time_ns() // 1_000_000 if now is None else int(now * 1000)
    if ms != state.last_ms:
        state.last_ms = ms
        state.prefix = encode_crockford(ms, 10)
    pos = state.pos
    if pos + 16 > len(state.chars):
        state.refill()
        pos = 0
    state.pos = pos + 16
    return state.prefix + state.chars[pos : pos + 16]


def is_ulid(value: object) -> bool:
    """Whether ``value`` is a string shaped like a ULID (any case)."""
    return isinstance(value, str) and ULID_PATTERN.fullmatch(value.upper()) is not None
