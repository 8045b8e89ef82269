"""The send pipeline, shared by every batching API client (Track today).

Read it in request-path order: :mod:`.receipt` (what callers hold), :mod:`.buffer`
(admission's memory budget), :mod:`.ordering` (which batch an operation joins),
:mod:`.batch` (the unit of sending and accounting), :mod:`.dispatch` (sending, at most
``max_concurrent_requests`` at once), :mod:`.ledger` (outcome accounting), and
:mod:`.pipeline`, which composes them. :mod:`.protocol` is what an API supplies.
"""

from .pipeline import Pipeline
from .protocol import Admissible, BatchFormat, SingleRequest
from .receipt import (
    DEDUPLICATED,
    DELIVERED,
    FlushResult,
    Outcome,
    OutcomeCallback,
    Receipt,
    Statistics,
)

__all__ = [
    "DEDUPLICATED",
    "DELIVERED",
    "Admissible",
    "BatchFormat",
    "FlushResult",
    "Outcome",
    "OutcomeCallback",
    "Pipeline",
    "Receipt",
    "SingleRequest",
    "Statistics",
]
