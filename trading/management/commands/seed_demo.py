"""Seeds demo data. Every app that has something to show contributes a ``demo.seed(out)``
function in its ``demo.py``; they run in INSTALLED_APPS order, each idempotent."""

from importlib import import_module, util

from django.apps import apps
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create demo users and data (idempotent): safe to run at every start."

    def handle(self, *args, **options):
        self.stdout.write("==> seeding demo data")
        for config in apps.get_app_configs():
            module_name = f"{config.name}.demo"
            if util.find_spec(module_name) is None:
                continue
            import_module(module_name).seed(self.stdout)
        self.stdout.write(self.style.SUCCESS("==> demo data ready"))
