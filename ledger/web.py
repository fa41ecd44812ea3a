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
from trading.errors import DomainError
from trading.formatting import display_amount
from trading.money import ASSETS

from . import selectors, services
from .deposit_addresses import deposit_address
from .history import history_rows
from .services.funding import WITHDRAWAL_FEES


class WithdrawForm(forms.Form):
    asset = forms.ChoiceField(choices=[(a, a) for a in ASSETS])
    amount = forms.CharField(
        max_length=40, widget=forms.TextInput(attrs={"inputmode": "decimal", "placeholder": "0.00"})
    )
    address = forms.CharField(max_length=120, label="Destination address")
    otp = forms.CharField(
        label="Authenticator code",
        max_length=6,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )


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
            )
        except DomainError as exc:
            placed = False
            for field, problems in exc.fields.items():
                if field in form.fields:
                    for problem in problems:
                        form.add_error(field, problem)
                    placed = True
            if not placed:
                form.add_error(None, exc.message)
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
