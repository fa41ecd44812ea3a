"""The Wallet page: balances, history, deposit instructions, withdrawals, demo faucet."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.selectors import kyc_tier
from accounts.services import two_factor_enabled
from trading import checks
from trading.errors import DomainError, show_on_form
from trading.formatting import display_amount
from trading.money import ASSETS

from . import selectors, services
from .deposit_addresses import deposit_address
from .history import history_rows
from .services import withdrawal_safety
from .services.funding import WITHDRAWAL_FEES


class WithdrawForm(forms.Form):
    asset = forms.ChoiceField(choices=[(a, a) for a in ASSETS])
    amount = forms.CharField(
        max_length=40, widget=forms.TextInput(attrs={"inputmode": "decimal", "placeholder": "0.00"})
    )
    address = forms.CharField(max_length=120, label="Destination address")
    # the travel rule's details (required from TRAVEL_RULE_THRESHOLD_USD, 1,000 USD)
    beneficiary_name = forms.CharField(
        max_length=200,
        required=False,
        label="Beneficiary name",
        help_text="Who receives the funds: needed for withdrawals worth 1,000 USD or more.",
    )
    wallet_type = forms.ChoiceField(
        required=False,
        label="Beneficiary's wallet",
        choices=[("", "—"), ("hosted", "At an exchange or custodian"), ("self_hosted", "A wallet I control myself")],
    )
    vasp = forms.CharField(max_length=200, required=False, label="Exchange or custodian (for a hosted wallet)")
    ownership_attested = forms.BooleanField(required=False, label="I own this self-hosted wallet")
    otp = forms.CharField(
        label="Authenticator code",
        max_length=6,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )

    # the service names the travel rule's fields as the API does
    SERVICE_FIELDS = {
        "beneficiary.name": "beneficiary_name",
        "beneficiary.wallet_type": "wallet_type",
        "beneficiary.vasp": "vasp",
        "beneficiary.ownership_attested": "ownership_attested",
    }

    def beneficiary(self) -> dict:
        data = self.cleaned_data
        given = {
            "name": data.get("beneficiary_name") or None,
            "wallet_type": data.get("wallet_type") or None,
            "vasp": data.get("vasp") or None,
            "ownership_attested": bool(data.get("ownership_attested")),
        }
        return {key: value for key, value in given.items() if value not in (None, False)}


def _context(request, form=None, address_form=None):
    from .address_book_web import wallet_context

    user = request.user
    page = Paginator(selectors.history_for(user=user), 20).get_page(request.GET.get("page"))
    return {
        "balances": selectors.balances_for(user=user),
        "history": page,
        "history_rows": history_rows(page.object_list),
        "withdrawals": selectors.withdrawals_for(user=user)[:10],
        "addresses": [deposit_address(user=user, asset=asset) for asset in ASSETS],
        "form": form or WithdrawForm(),
        "fees": WITHDRAWAL_FEES,
        "limits": checks.figure("withdrawal_limits", {}, user=user),
        "two_factor_on": two_factor_enabled(user=user),
        "kyc_tier": kyc_tier(user=user),
        "faucet": settings.DEMO_MODE,
        "assets": ASSETS,
        **wallet_context(request, address_form=address_form),
    }


@login_required
def wallet(request):
    return render(request, "ledger/wallet.html", _context(request))


@login_required
@require_POST
def withdraw(request):
    form = WithdrawForm(request.POST)
    if form.is_valid():
        try:
            withdrawal = services.withdrawal_request(
                user=request.user,
                asset=form.cleaned_data["asset"],
                amount=form.cleaned_data["amount"],
                address=form.cleaned_data["address"],
                otp=form.cleaned_data["otp"],
                beneficiary=form.beneficiary(),
            )
        except DomainError as exc:
            show_on_form(form, exc, rename=WithdrawForm.SERVICE_FIELDS)
        else:
            messages.success(
                request,
                f"Withdrawal of {display_amount(withdrawal.amount, withdrawal.asset)} {withdrawal.asset} requested; "
                "the amount and fee are held until it is processed.",
            )
            return redirect("web:wallet")
    return render(request, "ledger/wallet.html", _context(request, form), status=400)


@login_required
@require_POST
def faucet(request):
    asset = request.POST.get("asset", "")
    try:
        transfer = services.faucet_credit(user=request.user, asset=asset)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request, f"Demo faucet: {display_amount(transfer.amount, transfer.asset)} {transfer.asset} credited."
        )
    return redirect("web:wallet")


@login_required
@require_POST
def address_add(request):
    from .address_book_web import AddressForm

    form = AddressForm(request.POST)
    if form.is_valid():
        try:
            entry = withdrawal_safety.withdrawal_address_add(user=request.user, **form.cleaned_data)
        except DomainError as exc:
            show_on_form(form, exc)
        else:
            messages.success(
                request, f"Address “{entry.label}” saved: usable from {entry.usable_at:%Y-%m-%d %H:%M} UTC."
            )
            return redirect("web:wallet")
    return render(request, "ledger/wallet.html", _context(request, address_form=form), status=400)
