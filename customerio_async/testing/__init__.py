"""A contract-faithful fake Customer.io server for tests.

:class:`FakeCustomerIO` is a local ``aiohttp.web`` server that implements Customer.io's
Track API v1 and v2 and the App API's sends and broadcast triggers as the shared contract
describes them, enforces the documented limits, records every request, applied operation,
send and trigger, emits signed reporting webhooks (:meth:`FakeCustomerIO.emit_webhook`),
and acts out scripted :class:`Fault` s (error statuses, ``Retry-After``, stalls, connection
resets, partial batch rejections, slow bodies)::

    from customerio_async.testing import Fault, FakeCustomerIO

    async with FakeCustomerIO() as fake:
        fake.add_fault(Fault(status=503, match="/api/v2/batch"))
        ...  # point the client at fake.url with fake.site_id / fake.api_key
        await fake.wait_for_operations(10)
        assert fake.people()["id:42"]["plan"] == "pro"

It shares no code with the client, so the two cannot share a misreading of the
contract. Run it standalone with ``python -m customerio_async.testing --port 8080``.
"""

from ._fake import AppliedOperation as AppliedOperation
from ._fake import FakeCustomerIO as FakeCustomerIO
from ._fake import RecordedRequest as RecordedRequest
from ._fake import Region as Region
from ._fake import V1ErrorEnvelope as V1ErrorEnvelope
from ._fake_app import AppliedSend as AppliedSend
from ._fake_app import AppliedTrigger as AppliedTrigger
from ._faults import Fault as Fault
from ._faults import FaultAction as FaultAction

__all__ = [
    "AppliedOperation",
    "AppliedSend",
    "AppliedTrigger",
    "FakeCustomerIO",
    "Fault",
    "FaultAction",
    "RecordedRequest",
    "Region",
    "V1ErrorEnvelope",
]
