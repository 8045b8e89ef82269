"""Tests of ``customerio_async.testing`` (the fake server) over real loopback HTTP."""
