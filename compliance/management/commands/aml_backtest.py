"""Replay history through one version of a rule and through its live version: what each
raises, and where they differ. Stores nothing, opens no case."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from compliance.services import aml_backtest
from trading.errors import NotFound

from .aml_scan import parse_since


class Command(BaseCommand):
    help = "Compare what a rule version would raise over history against the live version."
    # --version is the rule's version here, not Django's
    suppressed_base_arguments = {"--version"}

    def add_arguments(self, parser):
        django_version = parser._option_string_actions.get("--version")
        if django_version is not None:
            parser._handle_conflict_resolve(None, [("--version", django_version)])
            for group in parser._action_groups:
                if django_version in group._group_actions:
                    group._group_actions.remove(django_version)
        parser.add_argument("--rule", required=True, help="the rule code, e.g. STRUCTURING")
        parser.add_argument("--version", required=True, type=int)
        parser.add_argument("--since", help="YYYY-MM-DD or an ISO 8601 time (default: all history)")
        parser.add_argument("--list", dest="show_list", action="store_true", help="print every differing alert")

    def handle(self, *args, rule, version, since=None, show_list=False, **options):
        try:
            result = aml_backtest(code=rule, version=version, since=parse_since(since) if since else None)
        except NotFound as error:
            raise CommandError(str(error)) from None
        code = result.candidate.code
        live = f"live v{result.live.version}" if result.live else "no live version"
        self.stdout.write(f"Backtest of {code} v{version} against {live} over {result.users:,} traders")
        for name, hits in ((f"v{version}", result.candidate_hits), (live, result.live_hits)):
            bands = {}
            for _, hit in hits:
                bands[hit.band] = bands.get(hit.band, 0) + 1
            detail = ", ".join(f"{band} {count}" for band, count in sorted(bands.items())) or "none"
            self.stdout.write(f"  {name}: {len(hits)} alerts ({detail})")
        candidate, current = result.keys(result.candidate_hits), result.keys(result.live_hits)
        self.stdout.write(f"  both: {len(candidate & current)}")
        self.stdout.write(f"  only v{version}: {len(candidate - current)}")
        self.stdout.write(f"  only the live version: {len(current - candidate)}")
        if show_list:
            for label, keys, hits in (
                (f"only v{version}", candidate - current, result.candidate_hits),
                ("only live", current - candidate, result.live_hits),
            ):
                for user_id, hit in hits:
                    if (user_id, hit.trigger_id) in keys:
                        self.stdout.write(
                            f"  {label}: user {user_id} {hit.band} score {hit.score} at {hit.at:%Y-%m-%d %H:%M} "
                            f"({', '.join(hit.record_ids)})"
                        )
