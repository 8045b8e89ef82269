"""The one module of the command line that reaches into the SDK's private modules.

Everything else in :mod:`customerio_async._cli` uses the public surface
(``from customerio_async import ...``). What is here has no public equivalent yet:

* the operation builders behind ``cio.identify``/``cio.track``/``cio.add_device``, so an
  import line is validated and serialised by exactly the code a direct call would use;
* the person-identifier check, so a bad ``id`` is reported under the file's field name;
* the timestamp normaliser, so a derived event id carries the same seconds the SDK sends;
* the Pipelines message builder (``PipelinesCall.from_dict``'s function);
* the environment variable names of the credentials.

When the private modules move, only the imports below need re-pointing.
"""

from __future__ import annotations

from customerio_async._cdp.messages import from_dict as pipelines_call
from customerio_async._common.wire import to_timestamp
from customerio_async._config import ENV_API_KEY, ENV_PIPELINES_WRITE_KEY, ENV_SITE_ID
from customerio_async._identifiers import person_ref
from customerio_async._track.calls import add_device, event, identify

__all__ = [
    "ENV_API_KEY",
    "ENV_PIPELINES_WRITE_KEY",
    "ENV_SITE_ID",
    "add_device",
    "event",
    "identify",
    "person_ref",
    "pipelines_call",
    "to_timestamp",
]
