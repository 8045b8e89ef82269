"""The innermost layer: counts every request and times every network exchange."""

from __future__ import annotations

import time

from .._common.histogram import LabelledHistograms
from .messages import HTTPHandler, HTTPRequest, HTTPResponse

__all__ = ["AccountingLayer", "status_class"]


def status_class(status: int | None) -> str:
    """``2xx``…``5xx``, or ``error`` when there was no response."""
    return f"{status // 100}xx" if status is not None else "error"


class AccountingLayer:
    """Counts requests, body bytes and requests in flight, and records each exchange's
    latency in a histogram labelled by api, endpoint template, region and status class (a
    bounded label set: never an identifier). It sits just above the transport, so it times
    exactly one network exchange per attempt.
    """

    __slots__ = ("_clock", "bytes_sent", "in_flight", "latency", "requests")

    def __init__(self) -> None:
        self.requests = 0
        self.in_flight = 0
        self.bytes_sent = 0
        self.latency = LabelledHistograms()
        self._clock = time.perf_counter

    async def __call__(self, request: HTTPRequest, handler: HTTPHandler) -> HTTPResponse:
        self.requests += 1
        self.in_flight += 1
        self.bytes_sent += len(request.body) if request.body else 0
        started = self._clock()
        status: int | None = None
        try:
            response = await handler(request)
            status = response.status
            return response
        finally:
            self.in_flight -= 1
            key = (request.api, request.endpoint, request.region, status_class(status))
            self.latency.get(key).observe(self._clock() - started)
