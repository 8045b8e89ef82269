"""Small building blocks every layer shares: JSON and timestamp wire rules, ULIDs, a TTL
cache, fixed-bucket histograms, rate-limited logging and the single-use client lifecycle.

Nothing here knows about an API, a client or the send pipeline; these modules import only
the leaves (``_config``, ``_exceptions``).
"""
