"""customerio-async for synchronous code: Django, Flask, Celery, scripts.

:class:`CustomerIO` (Track) and :class:`PipelinesClient` (Data Pipelines) have the async
clients' constructors and method names as plain functions.
A call validates and serialises its operation in your thread (bad input raises there),
hands it to a background event loop in a daemon thread and returns a :class:`SyncReceipt`
at once; ``wait=True`` blocks your thread until the outcome. Same pipeline, same batching,
same de-duplication and middleware as the async client::

    from customerio_async.sync import CustomerIO

    cio = CustomerIO(site_id, api_key)                  # one per process; thread-safe
    cio.identify("42", email="ada@example.com")
    cio.track("42", "purchased", {"amount": 42}).wait(timeout=5)

The loop starts on first use, ``close()`` (or ``with``, or interpreter exit) drains it, and
a forked child (gunicorn, Celery prefork) gets its own loop on first use.
"""

from ._pipelines import PipelinesClient as PipelinesClient
from ._receipt import SyncReceipt as SyncReceipt
from ._track import CustomerIO as CustomerIO

__all__ = ["CustomerIO", "PipelinesClient", "SyncReceipt"]

for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
