"""The Wallet page (/wallet/): balances, deposit addresses, withdrawal form, demo faucet."""

import re
from decimal import Decimal

import pytest
from django.test import Client

from accounts.models import KycProfile, KycStatus
from ledger.deposit_addresses import deposit_address
from ledger.models import LedgerAccount, Transfer, TransferRejection, Withdrawal
from ledger.selectors import balance_of
from ledger.services.funding import FAUCET_AMOUNTS
from tests.factories import enable_totp, totp_code

pytestmark = pytest.mark.django_db

ETH_ADDRESS = "0x52908400098527886E0F7030069857D2E4169EE7"


@pytest.fixture
def browser(user):
    client = Client()
    client.force_login(user)
    client.user = user
    return client


def _cell(html, asset, field):
    match = re.search(rf'<tr data-asset="{asset}">.*?data-field="{field}">([^<]*)</td>', html, re.S)
    assert match, f"no {field} cell for {asset}"
    # shown with thousands separators and a typographic minus ("1,234.50", "−1.00")
    return match.group(1).strip().replace(",", "").replace("\u2212", "-")


def _snapshot():
    return (
        Withdrawal.objects.count(),
        Transfer.objects.count(),
        TransferRejection.objects.count(),
        sorted(
            LedgerAccount.objects.values_list(
                "pk", "debits_posted", "credits_posted", "debits_pending", "credits_pending"
            )
        ),
    )


def test_wallet_needs_a_session(client):
    response = client.get("/wallet/")
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert client.post("/wallet/faucet/", {"asset": "BTC"}).status_code == 302
    assert client.post("/wallet/withdraw/", {"asset": "BTC"}).status_code == 302
    assert not Transfer.objects.exists()


def test_wallet_shows_balances_addresses_and_the_withdrawal_form(browser, fund):
    fund(browser.user, "USDT", "1234.5")
    fund(browser.user, "BTC", "0.015")

    response = browser.get("/wallet/")

    assert response.status_code == 200
    html = response.content.decode()
    assert Decimal(_cell(html, "USDT", "available")) == Decimal("1234.5")
    assert Decimal(_cell(html, "USDT", "total")) == Decimal("1234.5")
    assert Decimal(_cell(html, "BTC", "available")) == Decimal("0.015")
    assert Decimal(_cell(html, "ETH", "total")) == 0
    for asset in ("USDT", "BTC", "ETH"):
        address = deposit_address(user=browser.user, asset=asset).address
        assert f'data-deposit-address="{asset}">{address}<' in html
    assert 'id="withdraw-form"' in html
    assert 'action="/wallet/withdraw/"' in html
    for field in ("asset", "amount", "address", "otp"):
        assert f'name="{field}"' in html
    # the history lists the deposits
    assert 'id="history"' in html and html.count("Deposit") >= 2
    # no 2FA and no KYC yet: the page says what is missing
    assert "/account/2fa/" in html


def test_wallet_shows_held_funds_of_a_pending_withdrawal(browser, fund):
    user = browser.user
    KycProfile.objects.filter(user=user).update(status=KycStatus.APPROVED)
    device = enable_totp(user)
    fund(user, "USDT", "1000")

    code = totp_code(device)
    response = browser.post(
        "/wallet/withdraw/", {"asset": "USDT", "amount": "100", "address": ETH_ADDRESS, "otp": code}
    )

    assert response.status_code == 302 and response["Location"] == "/wallet/"
    [withdrawal] = Withdrawal.objects.filter(user=user)
    assert withdrawal.amount == Decimal("100") and withdrawal.status == "pending"
    html = browser.get("/wallet/").content.decode()
    assert "requested" in html  # the flash message
    assert Decimal(_cell(html, "USDT", "held")) == Decimal("101")
    assert Decimal(_cell(html, "USDT", "available")) == Decimal("899")
    assert 'id="withdrawals"' in html and "Pending review" in html

    # the same (used) code again is refused and writes nothing
    before = _snapshot()
    again = browser.post("/wallet/withdraw/", {"asset": "USDT", "amount": "100", "address": ETH_ADDRESS, "otp": code})
    assert again.status_code == 400
    assert "Already used: wait for the next code." in again.content.decode()
    assert _snapshot() == before


def test_faucet_credits_in_demo_mode(browser, settings):
    settings.DEMO_MODE = True
    html = browser.get("/wallet/").content.decode()
    assert 'data-faucet="BTC"' in html

    response = browser.post("/wallet/faucet/", {"asset": "BTC"})

    assert response.status_code == 302 and response["Location"] == "/wallet/"
    assert balance_of(user=browser.user, asset="BTC").available == FAUCET_AMOUNTS["BTC"]
    assert Transfer.objects.filter(code="faucet", asset="BTC").count() == 1
    page = browser.get("/wallet/").content.decode()
    assert "Demo faucet" in page
    assert Decimal(_cell(page, "BTC", "available")) == FAUCET_AMOUNTS["BTC"]


def test_faucet_is_refused_outside_demo_mode(browser, settings):
    settings.DEMO_MODE = False
    html = browser.get("/wallet/").content.decode()
    assert "data-faucet" not in html

    response = browser.post("/wallet/faucet/", {"asset": "BTC"}, follow=True)

    assert response.status_code == 200
    assert "only available in demo mode" in response.content.decode()
    assert not Transfer.objects.exists()


def test_faucet_with_an_unknown_asset_shows_an_error(browser, settings):
    settings.DEMO_MODE = True
    response = browser.post("/wallet/faucet/", {"asset": "DOGE"}, follow=True)
    assert response.status_code == 200
    assert "Unknown asset" in response.content.decode()
    assert not Transfer.objects.exists()


def test_withdraw_with_a_bad_address_shows_the_error_and_writes_nothing(browser, fund):
    user = browser.user
    KycProfile.objects.filter(user=user).update(status=KycStatus.APPROVED)
    device = enable_totp(user)
    fund(user, "BTC", "1")
    before = _snapshot()

    response = browser.post(
        "/wallet/withdraw/",
        {"asset": "BTC", "amount": "0.1", "address": "not-a-bitcoin-address", "otp": totp_code(device)},
    )

    assert response.status_code == 400
    html = response.content.decode()
    assert "Invalid address format." in html
    # the form keeps what was typed
    assert 'value="not-a-bitcoin-address"' in html and 'value="0.1"' in html
    assert _snapshot() == before
    assert balance_of(user=user, asset="BTC").held == 0


def test_withdraw_with_too_many_decimals_shows_the_error(browser, fund):
    user = browser.user
    KycProfile.objects.filter(user=user).update(status=KycStatus.APPROVED)
    device = enable_totp(user)
    fund(user, "USDT", "100")
    before = _snapshot()

    response = browser.post(
        "/wallet/withdraw/", {"asset": "USDT", "amount": "1.1234567", "address": ETH_ADDRESS, "otp": totp_code(device)}
    )

    assert response.status_code == 400
    assert "At most 6 decimal places." in response.content.decode()
    assert _snapshot() == before


def test_withdraw_over_the_balance_shows_the_error(browser, fund):
    user = browser.user
    KycProfile.objects.filter(user=user).update(status=KycStatus.APPROVED)
    device = enable_totp(user)
    fund(user, "USDT", "100")
    before = _snapshot()

    response = browser.post(
        "/wallet/withdraw/", {"asset": "USDT", "amount": "100", "address": ETH_ADDRESS, "otp": totp_code(device)}
    )

    assert response.status_code == 400
    assert "Insufficient USDT balance." in response.content.decode()
    assert _snapshot() == before
