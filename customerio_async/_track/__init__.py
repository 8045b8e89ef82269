"""The Track API client, in request-path order.

:mod:`.client` (``CustomerIO``: lifecycle and the calls' common path) and :mod:`.api` (the
calls) build operations with :mod:`.calls` and :mod:`.builders` (validated by
:mod:`.validation`, held in :mod:`.operations`), pass them through :mod:`.admission`
(de-duplication in :mod:`.dedup`, your middleware) into the send pipeline
(``customerio_async._pipeline``, configured by :mod:`.protocol`) or, in direct mode, send
them with :mod:`.direct`. :mod:`.regional` routes between regions; :mod:`.connect`,
:mod:`.results` and :mod:`.metrics` are the client's small parts.
"""
