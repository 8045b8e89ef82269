"""The typed v2 ``delivery`` builder: :class:`Delivery` (push metrics you report).

Send its operations with ``cio.send(op)``; they are ordered per delivery id.
"""

from __future__ import annotations

from typing import Any, Literal

from .._common.wire import to_timestamp
from .._exceptions import ValidationError
from .._identifiers import OrderingKey, check_identifier
from .operations import Operation, sized

__all__ = ["Delivery"]


class Delivery:
    """Builders for v2 ``delivery`` operations (message metrics reported by you).

    Example::

        await cio.send(Delivery.event(delivery_id, "opened", device_token=fcm_token))
    """

    METRICS = ("opened", "converted", "delivered")

    @staticmethod
    def event(
        delivery_id: str,
        metric: Literal["opened", "converted", "delivered"],
        *,
        device_token: str,
        timestamp: Any = None,
    ) -> Operation:
        """Report that a push message was delivered, opened or converted on a device.

        The API requires the ``device_token`` the message was sent to.

        Example::

            op = Delivery.event(delivery_id, "converted", device_token=fcm_token)
        """
        did = check_identifier(delivery_id, "delivery_id")
        if metric not in Delivery.METRICS:
            raise ValidationError(
                f"metric must be one of {', '.join(Delivery.METRICS)}", field="metric"
            )
        v2: dict[str, Any] = {
            "type": "delivery",
            "action": "event",
            "identifiers": {"id": did},
            "name": metric,
            "attributes": {"device_token": check_identifier(device_token, "device_token")},
        }
        if timestamp is not None:
            v2["timestamp"] = to_timestamp(timestamp)
        key = OrderingKey("delivery", "delivery_id", did)
        return Operation("delivery_event", sized(v2, "delivery_event"), key)
