"""The options page: the chain for everyone, the USDT-mode ticket for a signed-in trader."""

from django.conf import settings
from django.shortcuts import render


def options(request):
    """The chain for everyone; for a signed-in trader also the USDT-mode ticket, positions and
    order history (templates/orders/, driven by frontend/options.js through the options API)."""
    context = {"quote_ttl": settings.OPTION_QUOTE_TTL_SECONDS}
    if request.user.is_authenticated:
        from accounts.selectors import kyc_tier

        context["can_buy"] = kyc_tier(user=request.user) >= 1 or not settings.OPTION_KYC_REQUIRED
    return render(request, "orders/options/options.html", context)
