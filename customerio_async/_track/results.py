"""What direct Track calls return besides receipts."""

from __future__ import annotations

from dataclasses import dataclass

from .._config import Region
from .._http.errors import ErrorDetail

__all__ = ["BatchResult", "RegionInfo"]


@dataclass(frozen=True, slots=True)
class RegionInfo:
    """The answer of ``GET /api/v1/accounts/region``.

    Example::

        info = await cio.get_region()
        print(info.region, info.url)      # Region.EU https://track-eu.customer.io

    Attributes:
        region: The workspace's region.
        url: The Track origin for that region.
        environment_id: The workspace (environment) id.
    """

    region: Region
    url: str
    environment_id: int


@dataclass(frozen=True, slots=True)
class BatchResult:
    """The outcome of one explicit ``/api/v2/batch`` request (``cio.batch([...])``).

    Example::

        result = await cio.batch([Person.identify("42", {"plan": "pro"})])
        assert not result.rejected_indexes

    Attributes:
        status: HTTP status (200, or 207 when some operations were rejected).
        errors: One entry per rejected operation, with its ``batch_index``.
    """

    status: int
    errors: tuple[ErrorDetail, ...] = ()

    @property
    def rejected_indexes(self) -> frozenset[int]:
        """Indexes of the operations the API rejected."""
        return frozenset(e.batch_index for e in self.errors if e.batch_index is not None)
