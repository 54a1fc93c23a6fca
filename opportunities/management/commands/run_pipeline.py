import datetime as dt
import json

from django.core.management.base import BaseCommand, CommandError

from opportunities.pipeline import PipelineBusy, run_pipeline


class Command(BaseCommand):
    help = "Refresh every account's indicators and flag upsell candidates now, in this process."

    def add_arguments(self, parser):
        parser.add_argument("--as-of", type=dt.date.fromisoformat, help="Day to compute as of (default: today).")

    def handle(self, *args, as_of=None, **options):
        try:
            result = run_pipeline(as_of=as_of)
        except PipelineBusy as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(json.dumps(result))
