"""/account/settings/: the trader's time zone and theme."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from trading.errors import DomainError

from .models import Theme
from .preferences import time_zone_choices, user_settings_get, user_settings_update


class SettingsForm(forms.Form):
    timezone = forms.ChoiceField(
        label="Time zone",
        help_text="Every date on the pages is shown in this zone, with the zone named. The API stays in UTC.",
    )
    theme = forms.ChoiceField(label="Theme", choices=Theme.choices, widget=forms.RadioSelect)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["timezone"].choices = [(zone, zone.replace("_", " ")) for zone in time_zone_choices()]


@login_required
@require_http_methods(["GET", "POST"])
def settings_page(request):
    if request.method == "POST":
        form = SettingsForm(request.POST)
        if form.is_valid():
            try:
                user_settings_update(user=request.user, **form.cleaned_data)
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, "Settings saved.")
                return redirect("web:account_settings")
        return render(request, "accounts/settings.html", {"form": form}, status=400)
    return render(
        request, "accounts/settings.html", {"form": SettingsForm(initial=user_settings_get(user=request.user))}
    )
