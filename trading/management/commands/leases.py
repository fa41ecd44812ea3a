"""Operators' view of every lease: who leads which role, at which epoch, for how long."""

from django.core.management.base import BaseCommand
from django.db.models.functions import Now

from trading.models import Lease


class Command(BaseCommand):
    help = "List every lease (role, holder, epoch, expires in / expired ago), by the database clock."

    def handle(self, *args, **options):
        rows = list(Lease.objects.annotate(db_now=Now()).order_by("name"))
        if not rows:
            self.stdout.write("no leases")
            return
        table = [("ROLE", "HOLDER", "EPOCH", "STATE")]
        for lease in rows:
            left = (lease.expires_at - lease.db_now).total_seconds()
            if not lease.holder:
                state = "free"
            elif left > 0:
                state = f"held, expires in {left:.1f}s"
            else:
                state = f"expired {-left:.1f}s ago"
            table.append((lease.name, lease.holder or "-", str(lease.epoch), state))
        widths = [max(len(row[i]) for row in table) for i in range(3)]
        for row in table:
            self.stdout.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[3])
