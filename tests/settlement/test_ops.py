"""Staff views of the back office: the ops API, /metrics, /readyz and the admin queue."""

from __future__ import annotations

import pytest

from settlement import services
from settlement.models import State

from .conftest import emit, set_faults

pytestmark = pytest.mark.django_db


def settle(ids):
    services.settlements_run(ids=ids, through_venue=True)


@pytest.fixture
def two_settlements(venue_settings, venue):
    done, stuck = emit(), emit()
    (done_id,) = services.settlements_accept(events=[done])
    settle([done_id])
    set_faults(venue_settings, "reject=1.0")
    (stuck_id,) = services.settlements_accept(events=[stuck])
    settle([stuck_id])
    return done, stuck


def test_ops_settlements_lists_and_filters_for_staff(api, staff, two_settlements):
    done, stuck = two_settlements
    api.force_authenticate(staff)
    body = api.get("/api/v1/ops/settlements").json()
    assert body["count"] == 2
    by_ref = {row["ref"]: row for row in body["results"]}
    settled = by_ref[done["key"]]
    assert settled["state"] == "settled" and settled["current_step"] is None
    assert [s["name"] for s in settled["steps"]] == [
        "system accounts",
        "funding transfer",
        "venue swap",
        "return to system wallet",
    ]
    review = by_ref[stuck["key"]]
    assert (review["state"], review["current_step"], review["last_error_code"]) == (
        "manual_review",
        3,
        "venue_rejected",
    )
    order_id = stuck["key"].split(":")[1]
    only = api.get(f"/api/v1/ops/settlements?order_id={order_id}").json()
    assert [r["ref"] for r in only["results"]] == [stuck["key"]]
    assert api.get("/api/v1/ops/settlements?state=manual_review").json()["count"] == 1
    bad = api.get("/api/v1/ops/settlements?state=nope")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "validation_error"


def test_ops_settlements_is_staff_only(api, user, two_settlements):
    assert api.get("/api/v1/ops/settlements").status_code == 401
    api.force_authenticate(user)
    response = api.get("/api/v1/ops/settlements")
    assert response.status_code == 403 and "error" in response.json()


def test_metrics_expose_the_back_office_figures(client, two_settlements):
    text = client.get("/metrics").content.decode()
    assert 'settlements{state="settled"} 1.0' in text
    assert 'settlements{state="manual_review"} 1.0' in text
    assert "settlement_manual_reviews_total 1.0" in text
    assert "settlement_commit_to_settled_seconds_count 1.0" in text
    assert 'settlement_step_seconds_count{step="3"} 1.0' in text
    assert "relay_backlog_age_seconds" in text


def test_readyz_reports_the_relay(client):
    relay = client.get("/readyz").json()["checks"]["relay"]
    assert relay["ok"] is True and relay["leader"] is None and relay["lag_seconds"] >= 0


def test_admin_review_queue_retries_with_a_note(admin_client_otp, two_settlements, venue_settings, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    _, stuck = two_settlements
    from settlement.models import Settlement

    target = Settlement.objects.get(ref=stuck["key"])
    page = admin_client_otp.get("/admin/settlement/settlement/")
    assert page.status_code == 200 and stuck["key"] in page.content.decode()
    asked = admin_client_otp.post(
        "/admin/settlement/settlement/", {"action": "resolve_selected", "_selected_action": [target.pk]}
    )
    assert b"note" in asked.content  # the note is required before anything happens
    target.refresh_from_db()
    assert target.state == State.MANUAL_REVIEW
    admin_client_otp.post(
        "/admin/settlement/settlement/",
        {"action": "resolve_selected", "_selected_action": [target.pk], "note": "hedged by hand"},
    )
    target.refresh_from_db()
    assert (target.state, target.resolution_note) == (State.RESOLVED, "hedged by hand")


def test_admin_says_a_settled_settlement_is_done_not_step_5(admin_client_otp, two_settlements):
    from settlement.models import Settlement

    done, stuck = two_settlements
    settled = Settlement.objects.get(ref=done["key"])
    page = admin_client_otp.get(f"/admin/settlement/settlement/{settled.pk}/change/").content.decode()
    assert "done (all 4 steps)" in page and '<div class="readonly">5</div>' not in page
    review = Settlement.objects.get(ref=stuck["key"])
    page = admin_client_otp.get(f"/admin/settlement/settlement/{review.pk}/change/").content.decode()
    assert "3 of 4: venue swap" in page
    listing = admin_client_otp.get("/admin/settlement/settlement/?state__exact=settled").content.decode()
    assert "done (all 4 steps)" in listing


def test_the_admin_index_counts_what_waits_for_staff(admin_client_otp, two_settlements):
    import re

    from accounts.models import KycProfile, KycStatus
    from tests.factories import UserFactory

    for _ in range(2):
        KycProfile.objects.filter(user=UserFactory()).update(status=KycStatus.PENDING, full_name="Pending Person")
    page = admin_client_otp.get("/admin/").content.decode()
    waiting = page[page.index('id="waiting-for-staff"') :]
    counts = dict(re.findall(r'<a href="[^"]+">([^<]+)</a></th>\s*<td[^>]*><strong data-count="(\d+)"', waiting))
    assert {
        "Identity checks to review": "2",
        "Withdrawals to approve": "0",
        "Settlements in manual review": "1",
    }.items() <= counts.items()
    assert 'href="/admin/settlement/settlement/?state__exact=manual_review"' in waiting
