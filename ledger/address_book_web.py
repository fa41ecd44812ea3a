"""The Wallet page's address book (whitelist-only mode) and cancelling a pending withdrawal.
Same services as the API; the page itself is ``web.wallet``."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts import safety_services
from trading.errors import DomainError
from trading.formatting import display_amount
from trading.money import ASSETS

from . import selectors
from .services import withdrawal_safety


class AddressForm(forms.Form):
    asset = forms.ChoiceField(choices=[(a, a) for a in ASSETS])
    label = forms.CharField(max_length=64, widget=forms.TextInput(attrs={"placeholder": "e.g. my hardware wallet"}))
    address = forms.CharField(max_length=120, label="Address")


def wallet_context(request, *, address_form=None) -> dict:
    """What the wallet page's address book section shows."""
    user = request.user
    return {
        "address_book": selectors.withdrawal_addresses_of(user=user),
        "address_form": address_form or AddressForm(),
        "whitelist_only": user.withdrawal_whitelist_only,
        "whitelist_enforced_until": safety_services.whitelist_enforced_until(user),
        "now": timezone.now(),
    }


def _refused(request, exc: DomainError):
    messages.error(request, exc.message)
    return redirect("web:wallet")


@login_required
@require_POST
def address_delete(request, address_id: int):
    try:
        withdrawal_safety.withdrawal_address_delete(user=request.user, address_id=address_id)
    except DomainError as exc:
        return _refused(request, exc)
    messages.success(request, "Address removed from your address book.")
    return redirect("web:wallet")


@login_required
@require_POST
def address_mode(request):
    enabled = request.POST.get("whitelist_only") == "on"
    try:
        user = safety_services.withdrawal_whitelist_set(
            user=request.user, enabled=enabled, otp=request.POST.get("otp", "").strip() or None
        )
    except DomainError as exc:
        return _refused(request, exc)
    if enabled:
        messages.success(request, "Whitelist-only withdrawals are on: withdrawals go only to your address book.")
    else:
        until = safety_services.whitelist_enforced_until(user)
        messages.warning(
            request,
            "Whitelist-only withdrawals are off. Your address book still binds withdrawals"
            + (f" until {until:%Y-%m-%d %H:%M} UTC." if until else "."),
        )
    return redirect("web:wallet")


@login_required
@require_POST
def withdrawal_cancel(request, withdrawal_id: int):
    try:
        withdrawal = withdrawal_safety.withdrawal_cancel(user=request.user, withdrawal_id=withdrawal_id)
    except DomainError as exc:
        return _refused(request, exc)
    messages.success(
        request,
        f"Withdrawal of {display_amount(withdrawal.amount, withdrawal.asset)} {withdrawal.asset} cancelled: "
        "the amount and fee are available again.",
    )
    return redirect("web:wallet")
