"""How a Track client reaches its workspace: origin, credentials, connection pool."""

from __future__ import annotations

import base64
import dataclasses
import hashlib

from .._config import BatchConfig, PoolLimits, Timeouts
from .._http.transport import AiohttpTransport

__all__ = ["transport_for", "workspace_id"]


def _basic_auth(site_id: str, api_key: str) -> str:
    token = base64.b64encode(f"{site_id}:{api_key}".encode()).decode("ascii")
    return f"Basic {token}"


def workspace_id(site_id: str) -> str:
    """The workspace's id for gates and shared limiters: a digest, so the site id never
    shows in a shared store or a log."""
    return hashlib.sha256(site_id.encode()).hexdigest()[:16]


def transport_for(
    origin: str,
    site_id: str,
    api_key: str,
    timeouts: Timeouts,
    pool: PoolLimits,
    batch: BatchConfig,
    user_agent: str | None,
) -> AiohttpTransport:
    """The pooled transport of a Track client: Basic auth, and a connection per request
    slot (else requests would queue inside aiohttp and the concurrency setting would be a
    lie)."""
    if pool.max_connections_per_host < batch.max_concurrent_requests:
        pool = dataclasses.replace(
            pool,
            max_connections=max(pool.max_connections, batch.max_concurrent_requests),
            max_connections_per_host=batch.max_concurrent_requests,
        )
    return AiohttpTransport(
        origin=origin,
        authorization=_basic_auth(site_id, api_key),
        timeouts=timeouts,
        pool=pool,
        user_agent=user_agent,
    )
