"""The staff console in a real browser, at desktop and phone width (issue 18, defect 20): its
front page counts what waits for staff (identity checks, withdrawals, settlements in manual
review) with a link to each queue, and a settlement's step reads as the four-step flow says
("3 of 4: venue swap", "done (all 4 steps)"), never "Step: 5" under a title that says step 4.

The settlements are run in the test's process through the back office's services against
the simulated venue (tests.settlement's fixtures); daphne serves the admin."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import KycProfile, KycStatus
from ledger.services.funding import withdrawal_create
from settlement import services
from settlement.models import Settlement, State
from tests.browser.screens import DESKTOP, PHONE, phone_context
from tests.browser.staff import staff_sign_in
from tests.factories import DEFAULT_PASSWORD, UserFactory
from tests.orders.spot.conftest import funded_trader
from tests.settlement.conftest import (  # noqa: F401  (fixtures)
    _venue_calls_inline,
    emit,
    index_prints,
    set_faults,
    venue,
    venue_settings,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def settled_and_stuck(venue_settings, venue):  # noqa: F811
    done, stuck = emit(), emit()
    (done_id,) = services.settlements_accept(events=[done])
    services.settlements_run(ids=[done_id], through_venue=True)
    set_faults(venue_settings, "reject=1.0")
    (stuck_id,) = services.settlements_accept(events=[stuck])
    services.settlements_run(ids=[stuck_id], through_venue=True)
    return Settlement.objects.get(pk=done_id), Settlement.objects.get(pk=stuck_id)


def waiting_counts(page) -> dict[str, str]:
    rows = page.locator("#waiting-for-staff tr")
    counts = {}
    for row in rows.all():
        counts[row.locator("th a").inner_text().strip()] = row.locator("strong[data-count]").inner_text().strip()
    return counts


def test_the_console_counts_the_queues_and_says_each_settlements_step(
    page, browser, live_server_url, settled_and_stuck, screenshot_dir
):
    settled, stuck = settled_and_stuck
    assert (settled.state, stuck.state) == (State.SETTLED, State.MANUAL_REVIEW)
    for _ in range(2):
        KycProfile.objects.filter(user=UserFactory()).update(status=KycStatus.PENDING, full_name="Pending Person")
    trader = funded_trader(usdt="1000", btc="0")
    KycProfile.objects.filter(user=trader).update(status=KycStatus.APPROVED, full_name="Ada Lovelace", country="GB")
    withdrawal_create(user=trader, asset="USDT", amount=Decimal("100"), address="0x" + "ab" * 20)

    page.set_viewport_size(DESKTOP)
    staff_sign_in(page)
    expect(page.locator("#waiting-for-staff caption")).to_have_text("Waiting for staff")
    counts = waiting_counts(page)
    assert {
        "Identity checks to review": "2",
        "Withdrawals to approve": "1",
        "Settlements in manual review": "1",
    }.items() <= counts.items(), counts
    page.screenshot(path=str(screenshot_dir / "admin-index-desktop.png"), full_page=False)

    # the count's link opens the queue, where the stuck one says which step it stopped at
    page.locator("#waiting-for-staff").get_by_role("link", name="Settlements in manual review").click()
    expect(page).to_have_url(re.compile(r"/admin/settlement/settlement/\?state__exact=manual_review$"))
    row = page.locator("#result_list tbody tr").filter(has_text=stuck.ref)
    expect(row.locator("td.field-step_shown")).to_have_text("3 of 4: venue swap")
    expect(page.locator("#result_list tbody tr")).to_have_count(1)

    # the settled one: its title says step 4 and its step says done, not 5
    page.goto(f"/admin/settlement/settlement/{settled.pk}/change/")
    expect(page.locator("#content h2, #content h1").first).to_be_visible()
    expect(page.locator(".field-step_shown .readonly")).to_have_text("done (all 4 steps)")
    assert "settled, step 4" in page.content()
    body = page.locator("#content").inner_text()
    assert not re.search(r"Step:?\s*5\b", body), body[:2000]

    # the phone: the counts and their links on screen
    context = phone_context(browser, live_server_url, page.context.storage_state())
    try:
        mobile = context.new_page()
        mobile.goto("/admin/")
        assert waiting_counts(mobile) == counts
        for cell in mobile.locator("#waiting-for-staff strong[data-count]").all():
            box = cell.bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
        mobile.screenshot(path=str(screenshot_dir / "admin-index-phone.png"), full_page=False)
        mobile.goto(f"/admin/settlement/settlement/{settled.pk}/change/")
        expect(mobile.locator(".field-step_shown .readonly")).to_have_text("done (all 4 steps)")
    finally:
        context.close()


def test_a_kyc_rejection_typed_with_a_full_stop_reaches_the_trader_with_one(page, browser, live_server_url):
    """Issue 18, defect 12: the rejection notice ended 'blurry..' when staff typed the reason
    with its own full stop. Staff reject in the console; the trader reads it at desktop and
    phone width, on the notifications page and the verification page."""
    trader = UserFactory()
    KycProfile.objects.filter(user=trader).update(
        status=KycStatus.PENDING, full_name="Ada Lovelace", country="GB", submitted_at=timezone.now()
    )
    profile = KycProfile.objects.get(user=trader)

    page.set_viewport_size(DESKTOP)
    staff_sign_in(page)
    page.goto("/admin/accounts/kycprofile/")
    page.locator(f"input[name=_selected_action][value='{profile.pk}']").check()
    page.locator("select[name=action]").select_option("reject_selected")
    page.locator("button[name=index], button[title='Run the selected action']").first.click()
    page.fill("textarea[name=reason]", "Document is blurry.")
    page.locator("input[type=submit][value='Reject submissions']").click()
    expect(page.locator(".messagelist")).to_contain_text("1 submission(s) rejected.")
    page.context.clear_cookies()

    expected = "Reason: Document is blurry. You can correct your details and submit again."
    for viewport in (DESKTOP, PHONE):
        context = phone_context(browser, live_server_url) if viewport is PHONE else page.context
        tab = context.new_page() if viewport is PHONE else page
        try:
            tab.goto("/login/?next=/notifications/")
            tab.fill("input[name=email]", trader.email)
            tab.fill("input[name=password]", DEFAULT_PASSWORD)
            tab.get_by_role("button", name="Log in").click()
            expect(tab).to_have_url(re.compile(r"/notifications/$"))
            body = tab.locator(".notice .notice-body").filter(has_text="Document is blurry")
            expect(body).to_have_text(expected)
            assert ".." not in body.inner_text()
            assert tab.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
            tab.goto("/account/kyc/")
            expect(tab.locator("#kyc-status")).to_have_attribute("data-status", "rejected")
            expect(tab.locator("body")).to_contain_text("Reason: Document is blurry.")
            assert "blurry.." not in tab.locator("body").inner_text()
        finally:
            if viewport is PHONE:
                context.close()
