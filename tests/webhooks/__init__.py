"""Tests of :mod:`customerio_async.webhooks`, one module per module of the package:
verification, parsing, de-duplication, the receiver core and its ASGI and aiohttp adapters
(served for real; ``FakeCustomerIO`` emits signed events to them)."""
