"""Staff see the counter's records read-only in admin; the OpenAPI schema describes the
options endpoints with their own components and without warnings."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

from orders.models import OptionOrder, OptionPosition, OptionQuote
from orders.options.services import options_order_place, options_quote
from tests.factories import enable_totp, totp_code

from ..conftest import pick_series, trader

pytestmark = pytest.mark.django_db


def staff_client(staff, password) -> Client:
    device = enable_totp(staff)
    client = Client()
    response = client.post(
        "/admin/login/",
        {
            "username": staff.email,
            "password": password,
            "otp_device": device.persistent_id,
            "otp_token": totp_code(device),
            "next": "/admin/",
        },
    )
    assert response.status_code == 302
    return client


def test_admin_lists_quotes_orders_positions_and_exercises_read_only(listed, staff, password):
    user = trader()
    series = pick_series("BTC", "C")
    quote = options_quote(user=user, series=series.symbol, side="buy", contracts="1")
    order, _ = options_order_place(user=user, quote_id=str(quote.pk))
    position = OptionPosition.objects.get()
    client = staff_client(staff, password)
    for model, obj in (("optionorder", order), ("optionposition", position), ("optionquote", quote)):
        listing = client.get(f"/admin/orders/{model}/")
        assert listing.status_code == 200 and series.symbol.encode() in listing.content, model
        assert client.get(f"/admin/orders/{model}/add/").status_code == 403
        assert client.get(f"/admin/orders/{model}/{obj.pk}/change/").status_code == 200  # view only
        assert client.post(f"/admin/orders/{model}/{obj.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.get("/admin/orders/optionexercise/").status_code == 200
    assert b"pending" in client.get("/admin/orders/optionorder/").content  # the settlement state column
    assert OptionOrder.objects.count() == 1 and OptionQuote.objects.count() == 1


def test_the_schema_describes_the_options_endpoints(db):
    response = Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    paths = schema["paths"]
    assert "post" in paths["/api/v1/options/quotes"]
    assert {"get", "post"} <= set(paths["/api/v1/options/orders"])
    assert "get" in paths["/api/v1/options/positions"] and "get" in paths["/api/v1/options/exercises"]
    components = schema["components"]["schemas"]
    for name in (
        "OptionQuote",
        "OptionQuoteInputRequest",
        "OptionOrder",
        "OptionOrderCreated",
        "OptionOrderInputRequest",
        "OptionPosition",
        "OptionExercise",
    ):
        assert name in components, name
    assert "settlement_state" in components["OptionOrder"]["properties"]
    assert "position" in components["OptionOrderCreated"]["properties"]


def test_the_schema_generates_without_warnings(tmp_path):
    out, err = StringIO(), StringIO()
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"), stdout=out, stderr=err
    )
    assert "Warning" not in err.getvalue() and "Error" not in err.getvalue(), err.getvalue()
    assert "/api/v1/options/orders" in (tmp_path / "schema.yaml").read_text()
