import time

from django.core.management.base import BaseCommand, CommandError

from trading.audit import audit_chain_verify


class Command(BaseCommand):
    help = "Re-walk the audit trail's hash chain and report the first broken link; exits non-zero if there is one."

    def handle(self, *args, **options):
        started = time.monotonic()
        self.stdout.write("==> verifying the audit chain")
        result = audit_chain_verify(
            progress=lambda checked: self.stdout.write(f"    {checked} records verified so far")
        )
        elapsed = time.monotonic() - started
        if not result.ok:
            self.stderr.write(f"    {result.checked} records verified before the break ({elapsed:.2f} s)")
            raise CommandError(f"BROKEN at seq {result.first_broken}: {result.reason}")
        self.stdout.write(
            self.style.SUCCESS(f"{result.checked} records verified in {elapsed:.2f} s: the chain is intact")
        )
