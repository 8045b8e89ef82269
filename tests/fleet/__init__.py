"""Tests of the Redis extra (customerio_async.fleet) against a real redis-server."""
