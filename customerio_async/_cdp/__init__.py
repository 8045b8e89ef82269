"""The Data Pipelines (CDP) API client, in request-path order.

:mod:`.client` (:class:`PipelinesClient`: lifecycle, admission) and :mod:`.api` (the six
calls, analytics-python's names and argument order) build :class:`PipelinesCall` s with
:mod:`.messages` (validated by :mod:`.validation`, serialised once by :mod:`.wire`) and
admit them into the send pipeline (``customerio_async._pipeline``, configured by
:mod:`.protocol`: ``/v1/batch``, strict mode, gzip) over the shared HTTP stack;
:mod:`.metrics` exposes its counters.

The package imports only ``_pipeline``, ``_http``, ``_common``, ``_metrics`` and the leaves:
never the Track or App clients.
"""

from .client import PipelinesClient
from .messages import PipelinesCall

__all__ = ["PipelinesCall", "PipelinesClient"]
