import time

from django.core.management.base import BaseCommand, CommandError

from ledger.selectors import ledger_recompute


class Command(BaseCommand):
    help = (
        "Recompute every ledger account from its transfers and check the invariants; exits non-zero on any violation."
    )

    def handle(self, *args, **options):
        started = time.monotonic()
        self.stdout.write("==> recomputing ledger accounts from transfers")
        report = ledger_recompute()
        elapsed = time.monotonic() - started
        self.stdout.write(f"    {report.accounts} accounts, {report.transfers} transfers checked in {elapsed:.2f} s")
        for asset, totals in sorted(report.totals.items()):
            self.stdout.write(
                f"    {asset:5} debits {totals['debits_posted']:f} = credits {totals['credits_posted']:f}; "
                f"pending {totals['debits_pending']:f} = {totals['credits_pending']:f}"
            )
        problems = [
            *(f"counter mismatch  {line}" for line in report.mismatched),
            *(f"below zero        {line}" for line in report.negative),
            *(f"unbalanced asset  {line}" for line in report.unbalanced_assets),
        ]
        for line in problems[:50]:
            self.stderr.write(f"    !! {line}")
        if problems:
            raise CommandError(f"ledger audit FAILED: {len(problems)} violation(s)")
        self.stdout.write(
            self.style.SUCCESS("ledger audit OK: every account matches its transfers, every asset balances")
        )
