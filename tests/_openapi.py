"""Request-body validation against the vendor's Track API OpenAPI document (contract §8).

The document lives OUTSIDE the repository (``<x>/shared/openapi/`` next to the clone ``<x>/<repo>``)
and is never copied in. It is loaded once, the spec defects our traffic hits are patched **in
memory** (each patch is a small named function citing its contract item), and one
``referencing.Registry`` holding the whole document resolves every ``$ref``.

A fresh clone on its own has no ``shared/``, and README's test command must still pass there.
So every test that validates against a vendor document is marked
``pytest.mark.vendor_document(<path>)`` (usually as a module's ``pytestmark``), and
``tests/conftest.py`` calls :func:`require_document` before the test's fixtures run:
present, the test runs; absent, it is skipped with a one-line reason; absent while ``CI`` is
``true``, it FAILS, because CI always lays ``shared/`` beside the clone and a skip there would
let the spec tests go silently unrun. Tests that need only our own rules carry no mark.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError as SchemaError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

__all__ = [
    "APP_BODY_SCHEMAS",
    "APP_SPEC_PATCHES",
    "CAMPAIGN_BRANCHES",
    "OPENAPI_DIR",
    "PIPELINES_SPEC_PATH",
    "SPEC_PATCHES",
    "SPEC_PATH",
    "TRACK_EXTRA_SPEC_PATCHES",
    "VENDOR_DOCUMENT_MARKER",
    "BodyValidator",
    "Spec",
    "SpecOperation",
    "SpecViolation",
    "StalePatchError",
    "app_schema_name",
    "batch_item_pointer",
    "build_contract",
    "campaign_branch_pointer",
    "ci_forbids_skipping",
    "component_pointer",
    "is_ulid",
    "is_unix_seconds",
    "load_app_contract",
    "load_contract",
    "load_track_extra_contract",
    "require_document",
]

OPENAPI_DIR = Path(__file__).resolve().parents[2] / "shared" / "openapi"
SPEC_PATH = OPENAPI_DIR / "customer-io-track-api-openapi.json"
PIPELINES_SPEC_PATH = OPENAPI_DIR / "customer-io-pipelines-api-openapi.json"
VENDOR_DOCUMENT_MARKER = "vendor_document"
SPEC_URI = "urn:customerio:track-api-openapi"
HTTP_METHODS = ("get", "put", "post", "delete", "patch")
JSON = "application/json"

# ----------------------------------------------------------------------------- presence


def ci_forbids_skipping() -> bool:
    """True when ``CI`` is ``true`` (any case), as CI services set it."""
    return os.environ.get("CI", "").strip().lower() == "true"


def require_document(path: Path) -> None:
    """Return when ``path`` is a file; otherwise skip the running test, or fail it under CI.

    Raises:
        pytest.skip.Exception: The document is absent (outside CI).
        pytest.fail.Exception: The document is absent and ``CI`` is ``true``.
    """
    if path.is_file():
        return
    reason = f"vendor OpenAPI document absent: {path}"
    if ci_forbids_skipping():
        pytest.fail(f"{reason} (CI=true: spec tests must run, never skip)", pytrace=False)
    pytest.skip(reason)


# ----------------------------------------------------------------------------- formats
# Contract §8 item 6: the spec's nonstandard formats are ignored unless checkers exist.

_ULID = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{25}")
_MAX_UNIX_SECONDS = 100_000_000_000  # 12+ digits are milliseconds (contract §1.5, RB rule)


def is_ulid(instance: object) -> bool:
    """26 Crockford base32 characters, the first 0-7 (128 bits)."""
    return isinstance(instance, str) and _ULID.fullmatch(instance) is not None


def is_unix_seconds(instance: object) -> bool:
    """An integer number of Unix seconds (not a bool, float, string or milliseconds)."""
    return (
        isinstance(instance, int)
        and not isinstance(instance, bool)
        and 0 <= instance < _MAX_UNIX_SECONDS
    )


def make_format_checker() -> FormatChecker:
    """Draft 2020-12's standard checkers plus the spec's ULID and Unix-timestamp formats."""
    checker = FormatChecker()  # every format jsonschema knows (email, uri, date-time, …)
    for name in ("ulid", "ULID"):
        checker.checks(name)(is_ulid)
    for name in ("unix timestamp", "Unix timestamp"):
        checker.checks(name)(is_unix_seconds)
    return checker


# ----------------------------------------------------------------------------- patches
# Each patch checks the defect is still there, so a fixed vendor spec makes the patch
# fail loudly instead of silently masking a regression.

Spec = dict[str, Any]


def _body_schema(spec: Spec, path: str, method: str) -> dict[str, Any]:
    schema: dict[str, Any] = spec["paths"][path][method]["requestBody"]["content"][JSON]["schema"]
    return schema


class StalePatchError(RuntimeError):
    """The vendor spec no longer has the defect a patch expects (re-check contract §8)."""


def _expect(condition: bool, where: str) -> None:
    if not condition:
        raise StalePatchError(f"the spec changed at {where}; re-check the contract §8 patch")


def _one_of_to_any_of(node: dict[str, Any], where: str) -> None:
    _expect("oneOf" in node and "anyOf" not in node, where)
    node["anyOf"] = node.pop("oneOf")


def patch_merge_identifier_one_of(spec: Spec) -> None:
    """Contract §8 item 1: ``POST /api/v1/merge_customers`` ``primary``/``secondary`` use a
    ``oneOf`` whose branches have no ``required``, so ``{"email": ...}`` matches the "email"
    branch AND the "ID" and "cio_id" branches. Treat these two ``oneOf`` as ``anyOf``
    (``maxProperties: 1`` in each branch still rejects two identifiers)."""
    props = _body_schema(spec, "/api/v1/merge_customers", "post")["properties"]
    for name in ("primary", "secondary"):
        _one_of_to_any_of(props[name], f"merge_customers.{name}")


def patch_identify_attribute_types(spec: Spec) -> None:
    """Contract §8 item 3 (§2.1, §10 U4): ``PUT /api/v1/customers/{identifier}`` limits
    attribute values to string/integer/boolean, but the docs say "string, boolean or a
    number" and every SDK passes floats, null and nested JSON through. Allow any JSON value."""
    extra = _body_schema(spec, "/api/v1/customers/{identifier}", "put")["additionalProperties"]
    branches = [b.get("type") for b in extra.get("oneOf", [])]
    _expect(branches == ["string", "integer", "boolean"], "identify additionalProperties")
    del extra["oneOf"]
    extra["type"] = ["string", "number", "boolean", "null", "array", "object"]


def patch_screen_anonymous_id(spec: Spec) -> None:
    """Contract §8 item 4 (§2.2, §10 U5): the identified-person "Mobile screen view" event
    (``components.schemas.eventsRequest``) marks ``anonymous_id`` required; the person is
    already addressed by the path, so that is a spec bug. Drop it from ``required``."""
    (screen,) = (
        b
        for b in spec["components"]["schemas"]["eventsRequest"]["oneOf"]
        if b.get("title") == "Mobile screen view"
    )
    _expect("anonymous_id" in screen["required"], "eventsRequest 'Mobile screen view'")
    screen["required"] = [r for r in screen["required"] if r != "anonymous_id"]


def patch_device_custom_attribute_types(spec: Spec) -> None:
    """Contract §8 item 5 (§2.4): custom device attributes
    (``components.schemas.device_object_common.properties.attributes.additionalProperties``,
    shared by v1 ``device`` and v2 ``add_device``) are typed string only. Allow the JSON
    scalars the SDKs send (numbers, booleans)."""
    common = spec["components"]["schemas"]["device_object_common"]
    extra = common["properties"]["attributes"]["additionalProperties"]
    _expect(extra.get("type") == "string", "device_object_common attributes")
    extra["type"] = ["string", "number", "boolean"]


def patch_metrics_channel_one_of(spec: Spec) -> None:
    """Contract §8 item 1, at a location the contract does not list: ``POST /api/v1/metrics``
    is a ``oneOf`` of six per-channel branches (Email, In-app, Push, Slack, SMS, Webhook)
    that share ``track-metrics`` and differ only in their ``metric`` enums, with no
    ``additionalProperties: false``; the enums overlap, so ``{"delivery_id": "d",
    "metric": "opened"}`` is "valid under each of" all six and always fails. Treat it as
    ``anyOf``: a body is valid when SOME channel accepts it, which is what the fake encodes
    (``customerio_async/testing/_rules_track_extra.py``, ``METRIC_CHANNELS``)."""
    _one_of_to_any_of(_body_schema(spec, "/api/v1/metrics", "post"), "metrics oneOf")


SPEC_PATCHES: tuple[Callable[[Spec], None], ...] = (
    patch_merge_identifier_one_of,
    patch_identify_attribute_types,
    patch_screen_anonymous_id,
    patch_device_custom_attribute_types,
    patch_metrics_channel_one_of,  # also hit by the SDK's report_metric
)


# ----------------------------------------------------------------------------- operations


@dataclass(frozen=True)
class SpecOperation:
    """One ``paths`` entry: method + template, with its request-body schema pointer."""

    method: str
    template: str
    pattern: re.Pattern[str]
    body_pointer: str | None
    query_params: Mapping[str, str]  # name -> pointer to the parameter's schema

    @property
    def key(self) -> str:
        return f"{self.method} {self.template}"


def _pointer(*parts: str) -> str:
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


def _template_regex(prefix: str, template: str) -> re.Pattern[str]:
    # One path parameter matches exactly one raw (percent-encoded) segment.
    parts = re.split(r"(\{[^{}/]+\})", template)
    body = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts if p)
    return re.compile(re.escape(prefix) + body)


class SpecViolation(AssertionError):
    """A request does not conform to the (patched) vendor spec.

    Attributes:
        problems: One ``"<json path>: <message>"`` line per leaf schema error.
    """

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems


class BodyValidator:
    """Finds the spec operation for a request and validates its JSON body."""

    def __init__(self, spec: Spec, format_checker: FormatChecker | None = None) -> None:
        self.spec = spec
        resource = Resource.from_contents(spec, default_specification=DRAFT202012)
        self.registry: Registry = Registry().with_resource(SPEC_URI, resource)
        self.format_checker = format_checker or make_format_checker()
        # The servers (document- and operation-level) are bare origins such as
        # https://track.customer.io: the path keys themselves carry /api/v1, /api/v2 (and
        # /unsubscribe sits at the root). So the prefix to strip is whatever path a server
        # URL declares, which today is "" and a request path is matched against the full
        # key. Were a server to declare one (say /api/v1), keys would be relative to it.
        prefixes = {urlsplit(s["url"]).path.rstrip("/") for s in spec.get("servers", [])}
        for item in spec["paths"].values():
            for op in item.values():
                if isinstance(op, dict):
                    prefixes |= {urlsplit(s["url"]).path.rstrip("/") for s in op.get("servers", [])}
        self.server_prefixes = tuple(sorted(prefixes, key=len, reverse=True)) or ("",)
        self.operations = tuple(self._operations())
        self._validators: dict[str, Draft202012Validator] = {}

    def _operations(self) -> Iterator[SpecOperation]:
        for template, item in self.spec["paths"].items():
            for method in HTTP_METHODS:
                op = item.get(method)
                if op is None:
                    continue
                query = self._query_params(template, method, item, op)
                content = op.get("requestBody", {}).get("content", {})
                pointer = (
                    _pointer("paths", template, method, "requestBody", "content", JSON, "schema")
                    if JSON in content
                    else None
                )
                # One entry per server prefix; match() de-duplicates by method + template.
                for prefix in self.server_prefixes:
                    yield SpecOperation(
                        method.upper(),
                        template,
                        _template_regex(prefix, template),
                        pointer,
                        query,
                    )

    def _query_params(
        self, template: str, method: str, item: dict[str, Any], op: dict[str, Any]
    ) -> dict[str, str]:
        # Path-level parameters first, then operation-level ones (which override them).
        found: dict[str, str] = {}
        for where, params in (
            (("paths", template, "parameters"), item.get("parameters", [])),
            (("paths", template, method, "parameters"), op.get("parameters", [])),
        ):
            for index, param in enumerate(params):
                pointer = _pointer(*where, str(index))
                if "$ref" in param:
                    pointer = param["$ref"].removeprefix("#")
                    param = self._lookup(pointer)
                if param.get("in") == "query":
                    found[param["name"]] = pointer + "/schema"
        return found

    def _lookup(self, pointer: str) -> dict[str, Any]:
        node: Any = self.spec
        for part in pointer.lstrip("/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        assert isinstance(node, dict)
        return node

    def match(self, method: str, raw_path: str) -> SpecOperation:
        """The unique spec operation for ``method`` + raw (percent-encoded) path."""
        path = raw_path.split("?", 1)[0]
        hits = {
            op.key: op
            for op in self.operations
            if op.method == method.upper() and op.pattern.fullmatch(path)
        }
        if len(hits) != 1:
            raise SpecViolation(f"{method} {path}: expected one spec operation, got {sorted(hits)}")
        return next(iter(hits.values()))

    def validator(self, pointer: str) -> Draft202012Validator:
        """A Draft 2020-12 validator for the schema at ``pointer`` inside the document."""
        found = self._validators.get(pointer)
        if found is None:
            found = Draft202012Validator(
                {"$ref": f"{SPEC_URI}#{pointer}"},
                registry=self.registry,
                format_checker=self.format_checker,
            )
            self._validators[pointer] = found
        return found

    def errors(self, pointer: str, instance: Any) -> list[SchemaError]:
        return list(self.validator(pointer).iter_errors(instance))

    def check(self, pointer: str, instance: Any, what: str) -> None:
        """Raise :class:`SpecViolation` naming every leaf schema error for ``instance``."""
        problems = self.errors(pointer, instance)
        if problems:
            leaves = tuple(f"{err.json_path}: {err.message}" for err in _leaves(problems))
            lines = [f"{what} violates {pointer}:"]
            lines.extend(f"  {leaf}" for leaf in leaves)
            lines.append(f"  body: {json.dumps(instance, sort_keys=True)}")
            raise SpecViolation("\n".join(lines), leaves)

    def check_query(self, op: SpecOperation, query: Mapping[str, str], what: str) -> None:
        """Every query parameter must be declared by ``op`` and match its schema."""
        unknown = sorted(set(query) - set(op.query_params))
        if unknown:
            raise SpecViolation(f"{what}: query parameters {unknown} are not declared")
        for name, raw in query.items():
            pointer = op.query_params[name]
            schema_type = self._lookup(pointer).get("type")
            value: Any = int(raw) if schema_type == "integer" and raw.isdigit() else raw
            self.check(pointer, value, f"{what} query {name}")


def _leaves(errors: Iterable[SchemaError]) -> Iterator[SchemaError]:
    # anyOf/oneOf failures nest per-branch errors in ``context``. Branches rejected by the
    # ``type``/``action`` discriminators are noise: report only the branches that were
    # meant for this operation (all of them when none was).
    for err in errors:
        if not err.context:
            yield err
            continue
        branches = _branches(err)
        meant = [subs for subs in branches if not _missed(subs, err)]
        for subs in meant or branches:
            yield from _leaves(subs)


def _branches(err: SchemaError) -> list[list[SchemaError]]:
    grouped: dict[object, list[SchemaError]] = {}
    for sub in err.context or []:
        grouped.setdefault(sub.relative_schema_path[0], []).append(sub)
    return list(grouped.values())


def _missed(branch: list[SchemaError], combinator: SchemaError) -> bool:
    """Whether ``branch`` (or every alternative nested in it) was rejected by a
    ``type``/``action`` enum on the object the combinator applies to."""
    depth = len(combinator.absolute_path)
    for err in branch:
        rel = list(err.absolute_path)[depth:]
        if err.validator == "enum" and rel in (["type"], ["action"]):
            return True
        same_object = list(err.absolute_path) == list(combinator.absolute_path)
        if (
            err.context
            and same_object
            and all(_missed(subs, combinator) for subs in _branches(err))
        ):
            return True
    return False


def batch_item_pointer() -> str:
    """Pointer to the schema of one ``/api/v2/batch`` element."""
    return (
        _pointer("paths", "/api/v2/batch", "post", "requestBody", "content", JSON, "schema")
        + "/properties/batch/items"
    )


@lru_cache(maxsize=4)
def _raw_spec(path: Path) -> Spec:
    spec: Spec = json.loads(path.read_text(encoding="utf-8"))
    return spec


def build_contract(
    patches: Iterable[Callable[[Spec], None]],
    path: Path = SPEC_PATH,
    format_checker: FormatChecker | None = None,
) -> BodyValidator:
    """A validator over an in-memory copy of the document at ``path`` with ``patches``
    applied (the document on disk is never written)."""
    spec = copy.deepcopy(_raw_spec(path))
    for patch in patches:
        patch(spec)
    return BodyValidator(spec, format_checker)


@lru_cache(maxsize=1)
def load_contract() -> BodyValidator:
    """The document with every :data:`SPEC_PATCHES` applied; built once per process."""
    return build_contract(SPEC_PATCHES)


# ----------------------------------------------------------------------------- App API
# The App API's own document (AS) could not be stored (contract §10 U17); its request bodies
# are validated against the components the Track document shares with it (contract §8):
# ``#/components/schemas/sendemail|sendpush|sendsms|sendinbox|sendinapp|campaignRequest``.

APP_BODY_SCHEMAS: dict[str, str | None] = {
    "/v1/send/email": "sendemail",
    "/v1/send/push": "sendpush",
    "/v1/send/sms": "sendsms",
    "/v1/send/inbox_message": "sendinbox",
    "/v1/send/in_app": "sendinapp",
    # Sent by the official SDKs (PY 3.2.0) but absent from the shared components (U17).
    "/v1/send/whatsapp": None,
}
_TRIGGERS = re.compile(r"/v1/campaigns/[1-9][0-9]*/triggers")
_TRIGGER_ERRORS = re.compile(r"/v1/campaigns/[1-9][0-9]*/triggers/[1-9][0-9]*/errors")


def app_schema_name(method: str, raw_path: str) -> str | None:
    """The component that describes an App API request body; ``None`` for bodyless GETs and
    for endpoints the document has no component for.

    Raises:
        SpecViolation: The request is not an App API endpoint this SDK uses.
    """
    path = raw_path.split("?", 1)[0]
    if method == "POST" and path in APP_BODY_SCHEMAS:
        return APP_BODY_SCHEMAS[path]
    if method == "POST" and _TRIGGERS.fullmatch(path):
        return "campaignRequest"
    if method == "GET" and _TRIGGER_ERRORS.fullmatch(path):
        return None
    raise SpecViolation(f"{method} {path}: not an App API endpoint the SDK uses")


def component_pointer(name: str) -> str:
    """Pointer to ``#/components/schemas/<name>``."""
    return _pointer("components", "schemas", name)


# Which campaignRequest branch (by title) each audience key selects.
CAMPAIGN_BRANCHES = {
    "recipients": "Custom recipients",
    "emails": "Emails",
    "ids": "IDs",
    "per_user_data": "User Maps",
    "data_file_url": "Data file URL",
}


def campaign_branch_pointer(spec: Spec, body: Mapping[str, Any]) -> str:
    """Pointer to the ``campaignRequest`` branch meant for ``body``'s audience.

    Once its ``oneOf`` is relaxed to ``anyOf`` the "Default audience" branch accepts any
    object, so each body is also validated against the one branch its audience selects.
    """
    title = next((CAMPAIGN_BRANCHES[k] for k in CAMPAIGN_BRANCHES if k in body), "Default audience")
    node = spec["components"]["schemas"]["campaignRequest"]
    key = "anyOf" if "anyOf" in node else "oneOf"
    (index,) = (i for i, branch in enumerate(node[key]) if branch.get("title") == title)
    return component_pointer("campaignRequest") + f"/{key}/{index}"


def patch_campaign_request_one_of(spec: Spec) -> None:
    """Contract §8 item 1: ``components.schemas.campaignRequest`` is a ``oneOf`` whose
    "Default audience" branch (only optional common props, no ``additionalProperties:
    false``) also matches every other audience, so ``{"ids": [...]}`` is "valid under each
    of" two branches. Treat it as ``anyOf``; :func:`campaign_branch_pointer` then checks the
    branch the audience selects, so the validation keeps its teeth."""
    _one_of_to_any_of(spec["components"]["schemas"]["campaignRequest"], "campaignRequest")


def patch_sendemail_headers_type(spec: Spec) -> None:
    """Contract §8 item 2 (§4.1, §10 U3): ``transactionalSharedEmailObject.headers`` is
    typed as a JSON *string*, but the vendor's own example and every SDK send an object of
    header names to string values. Accept both shapes (only on the send-email object; the
    shared ``headers`` component used by other App objects is left alone)."""
    props = spec["components"]["schemas"]["transactionalSharedEmailObject"]["properties"]
    headers = props["headers"]
    _expect(headers == {"$ref": "#/components/schemas/headers"}, "sendemail headers")
    _expect(spec["components"]["schemas"]["headers"].get("type") == "string", "headers type")
    props["headers"] = {
        "anyOf": [
            {"$ref": "#/components/schemas/headers"},
            {"type": "object", "additionalProperties": {"type": "string"}},
        ]
    }


APP_SPEC_PATCHES: tuple[Callable[[Spec], None], ...] = (
    patch_campaign_request_one_of,
    patch_sendemail_headers_type,
)


@lru_cache(maxsize=1)
def load_app_contract() -> BodyValidator:
    """The document with every :data:`APP_SPEC_PATCHES` applied; built once per process."""
    return build_contract(APP_SPEC_PATCHES)


# ----------------------------------------------------------------------------- Track extras
# The fake's form, unsubscribe, metrics and push-event routes are validated against the same
# document with only the patch those bodies need (it is in SPEC_PATCHES too: the SDK's
# report_metric hits it).


TRACK_EXTRA_SPEC_PATCHES: tuple[Callable[[Spec], None], ...] = (patch_metrics_channel_one_of,)


@lru_cache(maxsize=1)
def load_track_extra_contract() -> BodyValidator:
    """The Track document with :data:`TRACK_EXTRA_SPEC_PATCHES` applied; built once."""
    return build_contract(TRACK_EXTRA_SPEC_PATCHES)
