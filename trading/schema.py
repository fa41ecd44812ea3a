"""What every API view shares, and how the OpenAPI schema at /api/schema/ describes it: decimal
strings, the error body and the 4xx answers.

Views describe their own success bodies; ``PlatformAutoSchema`` (REST_FRAMEWORK's
DEFAULT_SCHEMA_CLASS) adds the error responses, so an operation cannot leave them out.
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema_field
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.fields import get_attribute
from rest_framework.permissions import AllowAny, IsAuthenticated

from trading.converters import SymbolConverter
from trading.formatting import decimal_string, utc_string
from trading.money import _NUMBER as MONEY_NUMBER  # the one grammar of numbers in requests

# Responses write amounts as trading.formatting.decimal_string does: no exponent, no plus sign.
DECIMAL_PATTERN = r"^-?[0-9]+(\.[0-9]+)?$"
DECIMAL_STRING = {"type": "string", "format": "decimal", "pattern": DECIMAL_PATTERN}
# Requests may spell them as trading.money.parse_decimal reads them: ASCII digits, an optional
# fraction and a two-digit exponent ("0.015", "1.5e3"); the field's own rules come after.
DECIMAL_INPUT_PATTERN = f"^{MONEY_NUMBER.pattern}$"
DECIMAL_INPUT = {"type": "string", "format": "decimal", "pattern": DECIMAL_INPUT_PATTERN, "example": "0.015"}


@extend_schema_field(DECIMAL_INPUT)
class DecimalInput(serializers.JSONField):
    """An amount, price or quantity a request sends: a decimal string such as ``"0.015"``.

    The value reaches the service untouched (a JSON number too): the service parses it
    strictly and answers ``validation_error`` for anything else, so the field must not
    coerce (a CharField would turn the float 0.1 into "0.1" and hide it from that check).
    """


class _ScaledBy(NamedTuple):
    value: Decimal
    asset: str


@extend_schema_field(DECIMAL_STRING)
class DecimalString(serializers.Field):
    """An amount, price or quantity in a response: a decimal string, written by
    ``trading.formatting.decimal_string``.

    Normalized by default (``"65000.12"``); ``asset="USDT"`` writes it at that asset's scale,
    ``asset_source="underlying"`` at the scale of the asset the object names in that attribute,
    ``step=Decimal("0.01")`` on that step. A value that is a string already (a payload a
    selector or the engine built with the same function) is written as it is. Responses only:
    requests send amounts through ``DecimalInput``.
    """

    def __init__(
        self, *, asset: str | None = None, asset_source: str | None = None, step: Decimal | None = None, **kwargs
    ):
        self.asset, self.asset_source, self.step = asset, asset_source, step
        super().__init__(**kwargs)

    def get_attribute(self, instance):
        value = super().get_attribute(instance)
        if self.asset_source is None or value is None or isinstance(value, str):
            return value
        return _ScaledBy(value, get_attribute(instance, self.asset_source.split(".")))

    def to_representation(self, value):
        if isinstance(value, str):
            return value
        if isinstance(value, _ScaledBy):
            return decimal_string(value.value, asset=value.asset)
        return decimal_string(value, asset=self.asset, step=self.step)

    def to_internal_value(self, data):
        raise NotImplementedError("DecimalString writes responses; a request's amounts are DecimalInput fields.")


class UtcDateTime(serializers.DateTimeField):
    """A time in a response: ISO 8601 in UTC with a ``Z`` (``trading.formatting.utc_string``),
    whatever the active time zone. A string already written so is passed through."""

    def to_representation(self, value):
        if value in (None, ""):
            return None
        if isinstance(value, str):
            return value
        return utc_string(value)


# The URL converter's own pattern: anything else in that place is a 404 before a view runs.
SYMBOL_PATH = OpenApiParameter(
    "symbol",
    str,
    OpenApiParameter.PATH,
    required=True,
    pattern=f"^{SymbolConverter.regex}$",
    description="A spot pair (BTC-USDT, ETH-USDT) or an option series (BTC-20261225-100000-C); case-insensitive.",
    examples=[OpenApiExample("BTC-USDT", value="BTC-USDT"), OpenApiExample("ETH-USDT", value="ETH-USDT")],
)

ERROR_COMPONENT = "Error"
ERROR_SCHEMA = {
    "type": "object",
    "description": "Every 4xx (and 5xx) answer of the API.",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {
                    "type": "string",
                    "pattern": r"^[a-z][a-z0-9_]*$",
                    "description": "Stable machine code: validation_error, not_found, insufficient_funds, ...",
                },
                "message": {"type": "string", "description": "For people; may change."},
                "fields": {
                    "type": "object",
                    "additionalProperties": {},
                    "description": "Per input field, its messages (a list, or an object for nested input); "
                    "empty when the error is not about one field.",
                },
            },
            "required": ["code", "message", "fields"],
        }
    },
    "required": ["error"],
}
ERROR_REF = {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}

ERROR_DESCRIPTIONS = {
    400: "validation_error (`fields` names the input), parse_error, or another refusal of the request as sent.",
    401: "not_authenticated, token_invalid or authentication_failed.",
    403: "permission_denied, or csrf_failed for a browser session without its CSRF token.",
    404: "not_found: no such object, or another user's.",
    409: "The request conflicts with the current state.",
    415: "unsupported_media_type: send JSON (or multipart where the operation says so).",
    422: "A limit refused the request.",
    429: "rate_limited: too many attempts; try again later.",
    503: "A dependency is not available right now (service_unavailable while Redis is away, or index_stale); "
    "retry shortly (Retry-After).",
}


def errors(statuses: dict[int, str]) -> dict[int, OpenApiResponse]:
    """``extend_schema(responses={201: X, **errors({409: "insufficient_funds, ..."})})``: the
    error responses an operation adds to the ones every operation has, each naming its codes."""
    return {status: OpenApiResponse(ERROR_REF, description=text) for status, text in statuses.items()}


class PlatformAutoSchema(AutoSchema):
    """Adds the error responses that follow from how a view is built: 400 always, 401 with
    authentication, 403 with a permission beyond sign-in or a CSRF-checked session write,
    404 with a path parameter or pages, 415 with a request body, 429 with a throttle, and 503
    always (service_unavailable while Redis is away)."""

    def get_operation(self, *args, **kwargs):
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        self.registry.register_on_missing(
            ResolvedComponent(
                name=ERROR_COMPONENT, type=ResolvedComponent.SCHEMA, schema=ERROR_SCHEMA, object=ERROR_COMPONENT
            )
        )
        responses = operation["responses"]
        for status in self._implied_error_statuses(has_body="requestBody" in operation):
            responses.setdefault(
                str(status),
                {"content": {"application/json": {"schema": ERROR_REF}}, "description": ERROR_DESCRIPTIONS[status]},
            )
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def _implied_error_statuses(self, *, has_body: bool) -> list[int]:
        view = self.view
        unsafe = self.method not in ("GET", "HEAD", "OPTIONS")
        authenticators = list(getattr(view, "authentication_classes", []))
        permissions = list(getattr(view, "permission_classes", []))
        statuses = [400]
        if authenticators:
            statuses.append(401)
        if any(p not in (AllowAny, IsAuthenticated) for p in permissions) or (
            unsafe and any(issubclass(a, SessionAuthentication) for a in authenticators)
        ):
            statuses.append(403)
        if "{" in self.path or (self.method == "GET" and self._get_paginator() and self._is_list_view()):
            statuses.append(404)  # a paginated list answers 404 for a page past its end
        if has_body:
            statuses.append(415)
        if getattr(view, "throttle_classes", None):
            statuses.append(429)
        statuses.append(503)
        return statuses


def closed_response_objects(result, generator, request, public):
    """SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]: every object a response can carry says
    ``additionalProperties: false`` (unless it says otherwise, as a map does), so the schema
    states the whole of each answer and a field it does not declare fails schema checks
    (schemathesis' response_schema_conformance, tests/trading/test_api_responses.py).

    Request bodies stay open: the API ignores fields it does not read, and with
    COMPONENT_SPLIT_REQUEST their components are separate from the responses' ones.
    """
    components = result.get("components", {}).get("schemas", {})
    closed: set[str] = set()

    def close(node) -> None:
        if isinstance(node, list):
            for item in node:
                close(item)
            return
        if not isinstance(node, dict):
            return
        ref = node.get("$ref", "")
        if ref.startswith("#/components/schemas/"):
            name = ref.rsplit("/", 1)[1]
            if name not in closed:
                closed.add(name)
                close(components.get(name))
            return
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for key in ("properties",):
            for item in node.get(key, {}).values():
                close(item)
        for key in ("items", "additionalProperties", "not", "allOf", "oneOf", "anyOf"):
            if key in node:
                close(node[key])

    for item in result.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            for response in operation.get("responses", {}).values():
                for media in response.get("content", {}).values():
                    close(media.get("schema"))
    return result
