import argparse
import datetime as dt
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts import reference
from opportunities.demo import DEMO_USERS, DemoDataError, demo_data_exists, demo_data_reset, demo_data_seed


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a date like 2026-11-20, not {value!r}") from exc


class Command(BaseCommand):
    help = (
        "Fill an empty database with a realistic, deterministic demo: accounts, up to 120 days of usage, engagement, "
        "12 months of MRR movements, opportunities in every stage, and demo logins."
    )

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=42, help="Random seed (default 42); same seed, same data.")
        parser.add_argument("--accounts", type=int, default=500, help="How many accounts (default 500).")
        parser.add_argument("--as-of", type=_date, help="Last day of the data, YYYY-MM-DD (default: today).")
        parser.add_argument("--if-empty", action="store_true", help="Do nothing when accounts already exist.")
        parser.add_argument("--reset", action="store_true", help="Delete all accounts and the demo users first.")
        parser.add_argument(
            "--no-pipeline", dest="pipeline", action="store_false", help="Do not run the pipeline afterwards."
        )

    def handle(self, *args, seed=42, accounts=500, as_of=None, if_empty=False, reset=False, pipeline=True, **options):
        if isinstance(as_of, str):
            # call_command() passes keyword options through without argparse's type conversion.
            try:
                as_of = _date(as_of)
            except argparse.ArgumentTypeError as exc:
                raise CommandError(f"--as-of: {exc}") from exc
        as_of = as_of or timezone.localdate()
        self.verbosity = options.get("verbosity", 1)
        if accounts < 1:
            raise CommandError("--accounts must be at least 1.")
        if demo_data_exists():
            if if_empty:
                self.stdout.write("Accounts already exist; not seeding the demo.")
                return
            if not reset:
                raise CommandError(
                    "The database already has accounts. Use --reset to delete them (and the demo users) and seed "
                    "the demo again, or --if-empty to skip seeding."
                )
        if reset:
            demo_data_reset()

        started = self.started = time.monotonic()
        try:
            summary = demo_data_seed(seed=seed, as_of=as_of, accounts=accounts, log=self._progress)
        except DemoDataError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            # The demo writes plays and steps in bulk, which sends no signal: drop the cached reference data.
            reference.invalidate()
        elapsed = time.monotonic() - started

        write = self.stdout.write
        write(self.style.SUCCESS(f"Seeded the demo as of {as_of} (seed {seed}) in {elapsed:.1f}s:"))
        write(
            f"  accounts       {summary.accounts:>9,}  " + _counts(summary.by_plan) + "; " + _counts(summary.by_status)
        )
        write(f"  usage rows     {summary.snapshots:>9,}")
        write(f"  events         {summary.events:>9,}")
        write(f"  MRR movements  {summary.movements:>9,}")
        write(f"  opportunities  {sum(summary.opportunities.values()):>9,}  " + _counts(summary.opportunities))
        if summary.workspace:
            write("  workspace      " + ", ".join(f"{kind} {count:,}" for kind, count in summary.workspace.items()))
        write(f"Demo logins (password {settings.DEMO_PASSWORD!r}):")
        for username, first, last, role in DEMO_USERS:
            write(f"  {username:<8} {first} {last} ({role})")

        if pipeline:
            self._run_pipeline(as_of)

    def _progress(self, message: str) -> None:
        if self.verbosity >= 2:
            self.stdout.write(f"  {time.monotonic() - self.started:6.1f}s {message}")

    def _run_pipeline(self, as_of: dt.date) -> None:
        """Let the engine fill the queue from the fresh data, when this install has one."""
        try:
            from opportunities import pipeline
        except ModuleNotFoundError as exc:
            # Only a missing pipeline is fine; a pipeline that fails to import is a bug to see.
            if exc.name != "opportunities.pipeline":
                raise
            return
        run_pipeline = getattr(pipeline, "run_pipeline", None)
        if run_pipeline is None:
            return
        busy = getattr(pipeline, "PipelineBusy", ())
        started = time.monotonic()
        try:
            result = run_pipeline(as_of=as_of)
        except busy:
            self.stdout.write(self.style.WARNING("The pipeline is running elsewhere; the queue fills on its next run."))
            return
        self.stdout.write(f"Pipeline run as of {as_of} in {time.monotonic() - started:.1f}s: {result}")


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{key} {value:,}" for key, value in sorted(counts.items()))
