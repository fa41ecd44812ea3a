from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render

from trading.errors import ValidationFailed
from trading.formatting import decimal_string

from . import alert_selectors, alert_services, kinds, selectors, services
from . import alerts as alert_core


@login_required
def inbox(request):
    if request.method == "POST":
        services.notification_mark_all_read(user=request.user)
        return redirect("web:notifications")
    page = Paginator(selectors.notification_list(user=request.user), 25).get_page(request.GET.get("page"))
    return render(request, "notifications/inbox.html", {"page": page})


@login_required
def preferences(request):
    """Every kind with a switch per channel (the locked kinds shown on, not switchable), and
    the webhook URL; one form, stored all or nothing."""
    errors = {}
    if request.method == "POST":
        events = {
            kind: {channel: f"{kind}.{channel}" in request.POST for channel in kinds.CHANNELS}
            for kind in kinds.KINDS
            if not kinds.locked(kind)
        }
        url = request.POST.get("webhook_url", "").strip()
        try:
            services.preferences_update(
                user=request.user,
                events=events,
                webhook_url=url,
                rotate_secret="rotate_webhook_secret" in request.POST and bool(url),
            )
        except ValidationFailed as exc:
            errors = exc.fields or {"": exc.message}
        else:
            messages.success(request, "Your notification preferences are saved.")
            return redirect("web:notification_preferences")
    current = selectors.preferences_for(user=request.user)
    rows = [
        {
            "kind": kind,
            "summary": spec.summary,
            "locked": spec.locked,
            "channels": [(channel, current[kind][channel]) for channel in kinds.CHANNELS],
        }
        for kind, spec in kinds.KINDS.items()
    ]
    return render(
        request,
        "notifications/preferences.html",
        {
            "rows": rows,
            "channels": kinds.CHANNELS,
            "webhook": selectors.webhook_for(user=request.user),
            "errors": errors,
        },
    )


@login_required
def alerts(request):
    """The trader's price alerts (active and triggered) and a form for a new one. The page
    (frontend/alerts.js) creates and deletes them through the alerts API and repaints the
    list when one of them fires (a ``price_alert`` notification on /ws/user/)."""
    from .alerts_api import PriceAlertSerializer

    steps = alert_services.alert_symbols()
    symbols = sorted(steps, key=lambda s: (s.startswith(alert_services.INDEX_PREFIX), s))
    config = {
        "symbols": symbols,
        "ticks": {symbol: decimal_string(step) for symbol, step in steps.items()},
        "symbol": request.GET.get("symbol") if request.GET.get("symbol") in symbols else (symbols or [""])[0],
        "conditions": list(alert_core.CONDITIONS),
        "windows": list(alert_core.WINDOWS),
        "frequencies": list(alert_core.FREQUENCIES),
        "max_active": settings.PRICE_ALERTS_MAX_ACTIVE,
        "cooldown_seconds": settings.PRICE_ALERTS_COOLDOWN_SECONDS,
        "alerts": PriceAlertSerializer(alert_selectors.price_alert_list(user=request.user), many=True).data,
    }
    return render(request, "notifications/alerts.html", {"alerts_config": config})


@login_required
def mailbox(request):
    """Demo mode only: the emails the platform sent you, as they went out, so the email
    channel can be seen without a mail server."""
    if not settings.DEMO_MODE:
        raise Http404
    from .delivery import email_message

    page = Paginator(selectors.emails_sent_to(user=request.user), 20).get_page(request.GET.get("page"))
    mails = [(delivery, email_message(delivery.notification)) for delivery in page.object_list]
    return render(request, "notifications/mailbox.html", {"page": page, "mails": mails})
