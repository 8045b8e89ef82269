"""A contract-faithful fake Customer.io server for tests.

:class:`FakeCustomerIO` is a local ``aiohttp.web`` server that implements, from one origin,
Customer.io's Track API v1 and v2 (with form submissions and the unauthenticated delivery
reports: ``/unsubscribe/{delivery_id}``, ``/api/v1/metrics``, ``/api/v1/push/events``), the
App API's sends and broadcast triggers, and the Data Pipelines API (``/v1/identify``,
``/v1/track``, ``/v1/page``, ``/v1/screen``, ``/v1/group``, ``/v1/alias``, ``/v1/batch``,
with strict mode and gzip bodies) as the shared contract describes them. It enforces the
documented limits, records every request and everything it applied, emits signed reporting
webhooks (:meth:`FakeCustomerIO.emit_webhook`), and acts out scripted :class:`Fault` s
(error statuses, ``Retry-After``, stalls, connection resets, partial batch rejections, slow
bodies) on any route::

    from customerio_async.testing import Fault, FakeCustomerIO

    async with FakeCustomerIO() as fake:
        fake.add_fault(Fault(status=503, match="/api/v2/batch"))
        ...  # point the clients at fake.url with fake.site_id / fake.api_key,
        ...  # fake.app_api_key and fake.pipelines_write_key
        await fake.wait_for_operations(10)
        assert fake.people()["id:42"]["plan"] == "pro"
        assert fake.authorization_leaks == []  # no credentials sent where none belong
        assert fake.pipelines_drops == []  # nothing silently dropped

It shares no code with the client, so the two cannot share a misreading of the
contract. Run it standalone with ``python -m customerio_async.testing --port 8080``.
"""

from ._fake import FakeCustomerIO as FakeCustomerIO
from ._fake import V1ErrorEnvelope as V1ErrorEnvelope
from ._fake_app import AppliedSend as AppliedSend
from ._fake_app import AppliedTrigger as AppliedTrigger
from ._fake_pipelines import PipelinesDrop as PipelinesDrop
from ._fake_pipelines import PipelinesMessage as PipelinesMessage
from ._fake_track import AppliedOperation as AppliedOperation
from ._fake_track import Region as Region
from ._fake_track_extra import AppliedFormSubmission as AppliedFormSubmission
from ._fake_track_extra import AppliedMetric as AppliedMetric
from ._fake_track_extra import AppliedPushEvent as AppliedPushEvent
from ._fake_track_extra import AppliedUnsubscribe as AppliedUnsubscribe
from ._faults import Fault as Fault
from ._faults import FaultAction as FaultAction
from ._http import RecordedRequest as RecordedRequest

__all__ = [
    "AppliedFormSubmission",
    "AppliedMetric",
    "AppliedOperation",
    "AppliedPushEvent",
    "AppliedSend",
    "AppliedTrigger",
    "AppliedUnsubscribe",
    "FakeCustomerIO",
    "Fault",
    "FaultAction",
    "PipelinesDrop",
    "PipelinesMessage",
    "RecordedRequest",
    "Region",
    "V1ErrorEnvelope",
]
