"""The OpenAPI schema at /api/schema/ describes the API as it answers: typed bodies, decimal
strings, arrays and pages where the API sends them, and the error shape on every 4xx."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from trading.schema import DECIMAL_INPUT_PATTERN, DECIMAL_PATTERN

METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    with django_db_blocker.unblock():
        response = Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return json.loads(response.content)


def _operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def _resolve(schema, node):
    while "$ref" in node or "allOf" in node:
        node = node["allOf"][0] if "allOf" in node else schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def _response_schema(schema, path, method, status="200"):
    return _resolve(schema, schema["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"])


def _request_schema(schema, path, method):
    return _resolve(schema, schema["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"])


def test_every_operation_documents_its_4xx_with_the_error_component(schema):
    error = schema["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    assert error["properties"]["error"]["required"] == ["code", "message", "fields"]

    operations = list(_operations(schema))
    assert len(operations) > 40
    for path, method, operation in operations:
        responses = operation["responses"]
        assert "400" in responses, (method, path)
        for status, response in responses.items():
            if status.startswith("4"):
                assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}, (
                    method,
                    path,
                    status,
                )
                assert response["description"], (method, path, status)


def test_error_responses_follow_how_the_view_is_built(schema):
    paths = schema["paths"]
    assert "401" in paths["/api/v1/balances"]["get"]["responses"]  # signed in
    assert "401" not in paths["/api/v1/auth/register"]["post"]["responses"]  # no authentication at all
    assert "401" in paths["/api/v1/auth/token"]["post"]["responses"]  # declared: invalid_credentials, otp_required
    assert "404" in paths["/api/v1/orders/{order_id}"]["get"]["responses"]  # a path parameter
    assert "404" in paths["/api/v1/ledger"]["get"]["responses"]  # a page past the end
    assert "403" in paths["/api/v1/ops/settlements"]["get"]["responses"]  # staff only
    assert "403" in paths["/api/v1/orders"]["post"]["responses"]  # a session write without its CSRF token
    assert "415" in paths["/api/v1/orders"]["post"]["responses"]  # a request body
    assert "429" in paths["/api/v1/auth/token"]["post"]["responses"]  # throttled
    assert {"409", "503"} <= set(paths["/api/v1/orders"]["post"]["responses"])  # declared by the view
    # Found by the fuzz test: a quote beyond the position limit answers 422 position_limit.
    assert "position_limit" in paths["/api/v1/options/quotes"]["post"]["responses"]["422"]["description"]


def test_amounts_are_decimal_strings(schema):
    balance = schema["components"]["schemas"]["Balance"]["properties"]
    for field in ("available", "held", "total"):
        assert balance[field]["type"] == "string" and balance[field]["format"] == "decimal", field
        assert balance[field]["pattern"] == DECIMAL_PATTERN

    order_input = _request_schema(schema, "/api/v1/orders", "post")
    assert set(order_input["required"]) == {"symbol", "side", "type"}
    for field in (
        "quantity",
        "quote_quantity",
        "price",
        "stop_price",
        "trail_amount",
        "trail_percent",
        "display_quantity",
    ):
        assert order_input["properties"][field]["type"] == "string", field
        assert order_input["properties"][field]["format"] == "decimal", field
        assert order_input["properties"][field]["pattern"] == DECIMAL_INPUT_PATTERN, field
    assert _request_schema(schema, "/api/v1/withdrawals", "post")["properties"]["amount"]["format"] == "decimal"
    assert _request_schema(schema, "/api/v1/options/quotes", "post")["properties"]["contracts"]["format"] == "decimal"
    assert _request_schema(schema, "/api/v1/rfq", "post")["properties"]["quantity"]["format"] == "decimal"

    order = schema["components"]["schemas"]["SpotOrder"]["properties"]
    assert order["price"]["format"] == "decimal" and order["price"]["nullable"] is True
    assert order["filled_quantity"]["format"] == "decimal" and "nullable" not in order["filled_quantity"]


@pytest.mark.parametrize("value", ["0", "65000.12", "-3.5", "0.00000001"])
def test_the_response_decimal_pattern_takes_what_the_api_writes(value):
    assert re.fullmatch(DECIMAL_PATTERN.strip("^$"), value)


@pytest.mark.parametrize("value", ["1e-8", "1E+2", "NaN", "1_000", "\uff11", " 1", "+1", ".5", "5."])
def test_the_response_decimal_pattern_refuses_other_spellings(value):
    assert not re.fullmatch(DECIMAL_PATTERN.strip("^$"), value)


@pytest.mark.parametrize("value", ["0.015", "65000", "1.5e3", "2E-2"])
def test_the_request_decimal_pattern_takes_what_the_parser_reads(value):
    assert re.fullmatch(DECIMAL_INPUT_PATTERN.strip("^$"), value, flags=re.ASCII)


@pytest.mark.parametrize(
    "value", ["1e-999999999", "1_000", "\uff11", "\u0663", "NaN", "0x10", ".5", "5.", " 1", "1.2.3"]
)
def test_the_request_decimal_pattern_refuses_what_the_parser_refuses(value):
    assert not re.fullmatch(DECIMAL_INPUT_PATTERN.strip("^$"), value, flags=re.ASCII)


def test_request_enums_and_required_fields(schema):
    enums = {
        name: _resolve(schema, prop).get("enum")
        for name, prop in _request_schema(schema, "/api/v1/orders", "post")["properties"].items()
    }
    assert enums["side"] == ["buy", "sell"]
    assert enums["type"] == ["market", "limit", "stop_market", "stop_limit", "trailing_stop"]
    assert enums["time_in_force"] == ["GTC", "IOC", "FOK"]
    assert set(enums["symbol"]) == {"BTC-USDT", "ETH-USDT"}
    assert set(_request_schema(schema, "/api/v1/options/quotes", "post")["required"]) == {"series", "side", "contracts"}
    assert set(_request_schema(schema, "/api/v1/withdrawals", "post")["required"]) == {"asset", "amount", "address"}


def test_lists_are_arrays_and_pages_are_envelopes(schema):
    # These answer JSON arrays; the schema used to call them objects or say nothing.
    trades = _response_schema(schema, "/api/v1/markets/{symbol}/trades", "get")
    assert trades["type"] == "array" and _resolve(schema, trades["items"])["properties"]["price"]["format"] == "decimal"
    assert _response_schema(schema, "/api/v1/watchlist", "get") == {"type": "array", "items": {"type": "string"}}

    orders = _response_schema(schema, "/api/v1/orders", "get")
    assert set(orders["properties"]) == {"count", "next", "previous", "results"}
    assert orders["properties"]["results"]["items"] == {"$ref": "#/components/schemas/SpotOrder"}

    book = _response_schema(schema, "/api/v1/markets/{symbol}/orderbook", "get")
    assert book["properties"]["bids"]["items"]["items"]["format"] == "decimal"
    ticker = _response_schema(schema, "/api/v1/markets/{symbol}/ticker", "get")
    assert {"last", "bid", "ask", "index_price", "index_stale"} <= set(ticker["required"])
    chain = _response_schema(schema, "/api/v1/options/chain", "get")
    assert chain["properties"]["expiries"]["items"] == {"$ref": "#/components/schemas/OptionChainExpiry"}


def test_symbol_path_parameters_carry_the_converters_pattern(schema):
    [symbol] = [
        p for p in schema["paths"]["/api/v1/markets/{symbol}/ticker"]["get"]["parameters"] if p["name"] == "symbol"
    ]
    assert symbol["in"] == "path" and symbol["schema"]["pattern"].startswith("^[A-Za-z0-9]")
    assert symbol["examples"]


def test_fills_document_their_pages_and_the_bare_array_older_clients_read(schema):
    params = {p["name"]: p for p in schema["paths"]["/api/v1/fills"]["get"]["parameters"]}
    assert {"page", "limit", "symbol", "array"} <= set(params)
    assert "bare array" in params["array"]["description"]
    answer = _resolve(schema, _response_schema(schema, "/api/v1/fills", "get"))
    shapes = [_resolve(schema, shape) for shape in answer["oneOf"]]
    page = next(shape for shape in shapes if shape.get("type") == "object")
    assert set(page["properties"]) == {"count", "next", "previous", "results"}
    bare = next(shape for shape in shapes if shape.get("type") == "array")
    assert bare["items"] == page["properties"]["results"]["items"]
