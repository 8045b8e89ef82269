"""A small Flask app that sends to Customer.io on each request, for the gunicorn test
(``tests/sync/test_processes.py``): the client is created at import, so with ``--preload``
it is created in the gunicorn master and each forked worker starts its own loop on first
use; workers drain at exit through the ``atexit`` hook."""

from __future__ import annotations

import os

from flask import Flask

from customerio_async import BatchConfig
from customerio_async.sync import CustomerIO

cio = CustomerIO(
    os.environ["CIO_SITE_ID"],
    os.environ["CIO_API_KEY"],
    track_url=os.environ["CIO_TRACK_URL"],
    # A long linger: operations are still buffered when the worker is told to stop, so
    # the test shows that the exit drain delivers them.
    batch=BatchConfig(linger=60, drain_timeout=15),
)
app = Flask(__name__)


@app.post("/signup/<user>")
def signup(user: str) -> dict[str, object]:
    """Identify the user and track the sign-up; answer with what was handed over."""
    cio.identify(user, plan="pro")
    receipt = cio.track(user, "signed_up", {"source": "web"})
    return {"event_id": receipt.event_id, "pid": os.getpid()}
