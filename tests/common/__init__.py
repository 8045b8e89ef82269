"""Tests of the shared building blocks in :mod:`customerio_async._common`."""
