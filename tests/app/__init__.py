"""Tests of the App API client (:mod:`customerio_async._app`), one module per concern:
sends, requests, validation, idempotency, broadcasts, the client and the package layout;
plus the fake's App API rules and the vendor-spec conformance of every request body."""
