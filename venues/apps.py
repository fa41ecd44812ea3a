from django.apps import AppConfig


class VenuesConfig(AppConfig):
    name = "venues"
    verbose_name = "Venues"

    def ready(self):
        from django.core.signals import setting_changed

        from .config import SETTINGS, venue_cache_clear

        def forget_venues(setting, **kwargs):
            if setting in SETTINGS:
                venue_cache_clear()

        setting_changed.connect(forget_venues, weak=False, dispatch_uid="venues.forget_venues")
