"""Reliability and security proof: fault injection, load, bad input and secrets.

Every scenario talks real HTTP over loopback to ``FakeCustomerIO``, directly or through the
fault proxy in :mod:`reliability._proxy`; nothing in ``customerio_async`` is patched. The
scenario table and the figures of the last run are in ``docs/reliability.md``.
"""
