"""Typed v2 builders: :class:`Person` and :class:`Object` operations (``Delivery``: ``delivery``).

Send them with ``cio.send(op)`` (batched, or ``/api/v2/entity`` in direct mode) or
``cio.batch([...])``. Each validates and serialises once, and is ordered with everything
else that touches the same person or object.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from .._common.wire import to_timestamp
from .._exceptions import ValidationError
from .._identifiers import (
    IdentifierLike,
    OrderingKey,
    check_identifier,
    merge_identifier,
    person_ref,
)
from .calls import event_id
from .operations import Operation, sized
from .validation import check_attributes, check_event_data, check_event_name, check_platform

__all__ = ["Object", "Person", "object_relationship"]


def _v2_person(
    action: str,
    identifiers: IdentifierLike,
    extra: dict[str, Any] | None = None,
    *,
    event: str | None = None,
    explicit_id: bool = False,
) -> Operation:
    # No `person` on typed operations: direct mode sends them to /api/v2/entity as they are.
    ref = person_ref(identifiers, "identifiers")
    v2: dict[str, Any] = {"type": "person", "action": action, "identifiers": ref.identifiers}
    if extra:
        v2.update(extra)
    return Operation(action, sized(v2, action), ref.key, None, event, explicit_id)


def _relationships(items: Sequence[Mapping[str, Any]], field: str) -> list[dict[str, Any]]:
    if isinstance(items, Mapping) or not isinstance(items, Sequence) or not items:
        raise ValidationError(f"{field} must be a non-empty list", field=field)
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping) or not isinstance(item.get("identifiers"), Mapping):
            raise ValidationError(f"{field}[{i}] needs an 'identifiers' mapping", field=field)
        rel = {"identifiers": dict(item["identifiers"])}
        if item.get("relationship_attributes") is not None:
            check_attributes(
                item["relationship_attributes"], f"{field}[{i}].relationship_attributes"
            )
            rel["relationship_attributes"] = dict(item["relationship_attributes"])
        out.append(rel)
    return out


def object_relationship(
    object_type_id: str | int, object_id: str, attributes: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A person→object relationship entry for ``cio_relationships``.

    Example::

        op = Person.add_relationships("42", [object_relationship(1, "acme", {"role": "admin"})])
    """
    rel: dict[str, Any] = {"identifiers": _object_identifiers(object_type_id, object_id, None)}
    if attributes is not None:
        rel["relationship_attributes"] = dict(attributes)
    return rel


def _object_identifiers(
    object_type_id: str | int | None, object_id: str | None, cio_object_id: str | None
) -> dict[str, str]:
    if cio_object_id is not None:
        if object_type_id is not None or object_id is not None:
            raise ValidationError(
                "pass either cio_object_id or object_type_id + object_id", field="identifiers"
            )
        return {"cio_object_id": check_identifier(cio_object_id, "cio_object_id")}
    type_id = (
        check_identifier(object_type_id, "object_type_id") if object_type_id is not None else ""
    )
    if not (type_id.isascii() and type_id.isdigit()) or int(type_id) < 1:
        raise ValidationError(
            "object_type_id must be a positive integer (as int or string)", field="object_type_id"
        )
    return {"object_type_id": type_id, "object_id": check_identifier(object_id, "object_id")}


class Person:
    """Builders for v2 ``person`` operations (send with ``send()`` or ``batch()``).

    ``identifiers`` is a bare identifier (inferred: ``cio_…`` → cio_id, an email → email,
    else id) or an explicit one-key object such as ``{"email": ...}`` or ``{"phone": ...}``.

    Example::

        await cio.batch([Person.identify("42", {"plan": "pro"}), Person.event("42", "paid")])
    """

    @staticmethod
    def identify(
        identifiers: IdentifierLike,
        attributes: Mapping[str, Any] | None = None,
        *,
        timestamp: Any = None,
        cio_relationships: Sequence[Mapping[str, Any]] | None = None,
    ) -> Operation:
        """Create or update a person.

        Example::

            op = Person.identify("42", {"plan": "pro"}, timestamp=updated_at)
        """
        extra: dict[str, Any] = {}
        if attributes is not None:
            # created_at / _timestamp: Unix seconds, like identify() (a millisecond value
            # fails here instead of being stored as a date in the year 55,000).
            check_attributes(attributes, timestamps=True)
            extra["attributes"] = dict(attributes)
        if timestamp is not None:
            extra["timestamp"] = to_timestamp(timestamp)
        if cio_relationships is not None:
            extra["cio_relationships"] = _relationships(cio_relationships, "cio_relationships")
        return _v2_person("identify", identifiers, extra)

    @staticmethod
    def event(
        identifiers: IdentifierLike,
        name: str,
        attributes: Mapping[str, Any] | None = None,
        *,
        id: str | None = None,
        timestamp: Any = None,
    ) -> Operation:
        """Track an event for a person (a ULID ``id`` is generated when omitted).

        Example::

            op = Person.event("42", "purchased", {"amount": 42}, timestamp=paid_at)
        """
        return Person._event("event", identifiers, name, attributes, id, timestamp)

    @staticmethod
    def page(
        identifiers: IdentifierLike,
        name: str,
        attributes: Mapping[str, Any] | None = None,
        *,
        id: str | None = None,
        timestamp: Any = None,
    ) -> Operation:
        """Track a page view (``name`` is the URL or page name).

        Example::

            op = Person.page("42", "https://example.com/pricing", {"referrer": "ads"})
        """
        return Person._event("page", identifiers, name, attributes, id, timestamp)

    @staticmethod
    def screen(
        identifiers: IdentifierLike,
        name: str,
        attributes: Mapping[str, Any] | None = None,
        *,
        id: str | None = None,
        timestamp: Any = None,
    ) -> Operation:
        """Track a mobile screen view.

        Example::

            op = Person.screen({"phone": "+14155550100"}, "Checkout")
        """
        return Person._event("screen", identifiers, name, attributes, id, timestamp)

    @staticmethod
    def _event(
        action: str,
        identifiers: IdentifierLike,
        name: str,
        attributes: Mapping[str, Any] | None,
        id: str | None,
        timestamp: Any,
    ) -> Operation:
        eid = event_id(id)
        extra: dict[str, Any] = {
            "name": check_event_name(name),
            "id": eid,
            "attributes": check_event_data(attributes, "attributes"),
        }
        if timestamp is not None:
            extra["timestamp"] = to_timestamp(timestamp)
        return _v2_person(action, identifiers, extra, event=eid, explicit_id=id is not None)

    @staticmethod
    def delete(identifiers: IdentifierLike) -> Operation:
        """Delete a person.

        Example::

            await cio.send(Person.delete("42"))
        """
        return _v2_person("delete", identifiers)

    @staticmethod
    def suppress(identifiers: IdentifierLike) -> Operation:
        """Delete a person and block their identifier from being re-added.

        Example::

            await cio.send(Person.suppress({"email": "ada@example.com"}))
        """
        return _v2_person("suppress", identifiers)

    @staticmethod
    def unsuppress(identifiers: IdentifierLike) -> Operation:
        """Unblock a suppressed identifier (does not restore the profile).

        Example::

            await cio.send(Person.unsuppress({"email": "ada@example.com"}))
        """
        return _v2_person("unsuppress", identifiers)

    @staticmethod
    def add_device(
        identifiers: IdentifierLike,
        token: str,
        platform: Literal["ios", "android"] | str,
        *,
        last_used: Any = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> Operation:
        """Add or update a push device.

        Example::

            op = Person.add_device("42", fcm_token, "android", last_used=seen_at)
        """
        device: dict[str, Any] = {"token": check_identifier(token, "token")}
        device["platform"] = check_platform(platform)
        if last_used is not None:
            device["last_used"] = to_timestamp(last_used, field="last_used")
        if attributes is not None:
            check_attributes(attributes, "device attributes")
            device["attributes"] = dict(attributes)
        return _v2_person("add_device", identifiers, {"device": device})

    @staticmethod
    def delete_device(identifiers: IdentifierLike, token: str) -> Operation:
        """Remove a push device.

        Example::

            await cio.send(Person.delete_device("42", fcm_token))
        """
        return _v2_person(
            "delete_device", identifiers, {"device": {"token": check_identifier(token, "token")}}
        )

    @staticmethod
    def add_relationships(
        identifiers: IdentifierLike, relationships: Sequence[Mapping[str, Any]]
    ) -> Operation:
        """Relate a person to objects (see :func:`object_relationship`).

        Example::

            op = Person.add_relationships("42", [object_relationship(1, "acme", {"role": "admin"})])
        """
        rels = _relationships(relationships, "relationships")
        return _v2_person("add_relationships", identifiers, {"cio_relationships": rels})

    @staticmethod
    def delete_relationships(
        identifiers: IdentifierLike, relationships: Sequence[Mapping[str, Any]]
    ) -> Operation:
        """Remove person→object relationships.

        Example::

            op = Person.delete_relationships("42", [object_relationship(1, "acme")])
        """
        rels = _relationships(relationships, "relationships")
        return _v2_person("delete_relationships", identifiers, {"cio_relationships": rels})

    @staticmethod
    def merge(primary: Mapping[str, str], secondary: Mapping[str, str]) -> Operation:
        """Merge ``secondary`` into ``primary`` (each exactly one of id, email, cio_id).

        Example::

            op = Person.merge({"email": "ada@example.com"}, {"id": "anon-7f3a"})
        """
        objs = []
        for name, obj in (("primary", primary), ("secondary", secondary)):
            if not isinstance(obj, Mapping) or len(obj) != 1:
                raise ValidationError(f"{name} must have exactly one identifier", field=name)
            ((k, v),) = obj.items()
            objs.append(merge_identifier(k, v, name))
        v2 = {"type": "person", "action": "merge", "primary": objs[0], "secondary": objs[1]}
        keys = [OrderingKey("person", *next(iter(obj.items()))) for obj in objs]
        return Operation("merge", sized(v2, "merge"), keys[0], more_keys=(keys[1],))


class Object:
    """Builders for v2 ``object`` operations (companies, accounts, …).

    Addressed by ``object_type_id`` (a positive integer) and ``object_id``, or ``cio_object_id``.

    Example::

        await cio.send(Object.identify(1, "acme", {"name": "Acme Inc.", "plan": "enterprise"}))
    """

    @staticmethod
    def _op(
        action: str,
        object_type_id: str | int | None,
        object_id: str | None,
        cio_object_id: str | None,
        extra: dict[str, Any],
    ) -> Operation:
        ids = _object_identifiers(object_type_id, object_id, cio_object_id)
        key = (
            OrderingKey("object", "cio_object_id", ids["cio_object_id"])
            if "cio_object_id" in ids
            else OrderingKey("object", ids["object_type_id"], ids["object_id"])
        )
        v2: dict[str, Any] = {"type": "object", "action": action, "identifiers": ids, **extra}
        return Operation(action, sized(v2, action), key)

    @staticmethod
    def identify(
        object_type_id: str | int | None = None,
        object_id: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        *,
        cio_object_id: str | None = None,
        cio_relationships: Sequence[Mapping[str, Any]] | None = None,
    ) -> Operation:
        """Create or update an object; ``None``/``""`` attribute values remove attributes.

        Example::

            op = Object.identify(1, "acme", {"name": "Acme Inc.", "seats": 40})
        """
        extra: dict[str, Any] = {}
        if attributes is not None:
            check_attributes(attributes)
            extra["attributes"] = dict(attributes)
        if cio_relationships is not None:
            extra["cio_relationships"] = _relationships(cio_relationships, "cio_relationships")
        return Object._op("identify", object_type_id, object_id, cio_object_id, extra)

    @staticmethod
    def identify_anonymous(
        object_type_id: str | int,
        object_id: str,
        anonymous_ids: Sequence[str],
        attributes: Mapping[str, Any] | None = None,
    ) -> Operation:
        """Create or update an object and relate it to anonymous visitors.

        Example::

            op = Object.identify_anonymous(1, "acme", ["anon-7f3a"], {"name": "Acme Inc."})
        """
        rels = [
            {"identifiers": {"anonymous_id": check_identifier(a, "anonymous_ids[]")}}
            for a in anonymous_ids
        ]
        if not rels:
            raise ValidationError("anonymous_ids must not be empty", field="anonymous_ids")
        extra: dict[str, Any] = {"cio_relationships": rels}
        if attributes is not None:
            check_attributes(attributes)
            extra["attributes"] = dict(attributes)
        return Object._op("identify_anonymous", object_type_id, object_id, None, extra)

    @staticmethod
    def delete(
        object_type_id: str | int | None = None,
        object_id: str | None = None,
        *,
        cio_object_id: str | None = None,
    ) -> Operation:
        """Delete an object.

        Example::

            await cio.send(Object.delete(1, "acme"))  # or Object.delete(cio_object_id=...)
        """
        return Object._op("delete", object_type_id, object_id, cio_object_id, {})

    @staticmethod
    def add_relationships(
        object_type_id: str | int,
        object_id: str,
        people: Sequence[IdentifierLike],
        *,
        relationship_attributes: Mapping[str, Any] | None = None,
    ) -> Operation:
        """Relate people (bare or explicit identifiers) to an object.

        Example::

            op = Object.add_relationships(1, "acme", ["42", {"email": "bob@example.com"}])
        """
        return Object._op(
            "add_relationships",
            object_type_id,
            object_id,
            None,
            {"cio_relationships": _people_rels(people, relationship_attributes)},
        )

    @staticmethod
    def delete_relationships(
        object_type_id: str | int, object_id: str, people: Sequence[IdentifierLike]
    ) -> Operation:
        """Remove people's relationships to an object.

        Example::

            op = Object.delete_relationships(1, "acme", ["43"])
        """
        return Object._op(
            "delete_relationships",
            object_type_id,
            object_id,
            None,
            {"cio_relationships": _people_rels(people, None)},
        )


def _people_rels(
    people: Sequence[IdentifierLike], attributes: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    if isinstance(people, (str, Mapping)) or not people:
        raise ValidationError("people must be a non-empty list of identifiers", field="people")
    if attributes is not None:
        check_attributes(attributes, "relationship_attributes")
    out = []
    for p in people:
        rel: dict[str, Any] = {"identifiers": person_ref(p, "people[]").identifiers}
        if attributes is not None:
            rel["relationship_attributes"] = dict(attributes)
        out.append(rel)
    return out
