"""In-process timings of pages: what one request costs the app, without a server or concurrency around it.

    .venv/bin/python bench/page_profile.py [--requests 150] [--user csm1] [--code DIR] URL [URL ...]

Runs against bench/pages.py's database (seed it with that script first) and Redis as the cache, with the
same settings. Each URL is asked for three times to warm up, then in turns, --requests times each; prints
the median, the first quartile and the minimum, and the queries one request runs. The median against the
bare 50-row page (/bench/rows/) is the figure to compare between two versions of the code: run it once as
it is and once with --code pointing at a checkout of the other version (`git worktree add /tmp/old REV`),
one after the other. A URL ending in /timeline/ is asked for as htmx asks for it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("urls", nargs="+")
    parser.add_argument("--requests", type=int, default=150)
    parser.add_argument("--user", default="csm1")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/upsell_bench_pages"),
    )
    parser.add_argument("--cache-url", default=os.environ.get("BENCH_CACHE_URL", "redis://127.0.0.1:6379/3"))
    parser.add_argument("--code", type=Path, default=ROOT, help="The checkout whose app to time (default: this one).")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    code = args.code.resolve()
    sys.path.insert(0, str(code))
    os.chdir(code)  # Celery puts the working directory first on sys.path when the app loads
    os.environ.update(
        DJANGO_SETTINGS_MODULE="bench.pages_settings",
        DJANGO_DEBUG="0",
        DJANGO_SECURE_SSL_REDIRECT="0",
        DJANGO_ALLOWED_HOSTS="testserver",
        CELERY_BROKER_URL="memory://",
        LOG_LEVEL="ERROR",
        DATABASE_URL=args.database_url,
        CACHE_URL=args.cache_url,
    )
    warnings.simplefilter("ignore")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.force_login(get_user_model().objects.get(username=args.user))

    def get(url: str):
        headers = {"HX-Request": "true"} if url.endswith("/timeline/") else {}
        response = client.get(url, headers=headers)
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code}")

    timings: dict[str, list[float]] = {url: [] for url in args.urls}
    for url in args.urls:
        for _ in range(3):
            get(url)
    for _ in range(args.requests):
        for url in args.urls:
            started = time.perf_counter()
            get(url)
            timings[url].append(time.perf_counter() - started)
    print(f"{'median':>9} {'p25':>9} {'min':>9} {'queries':>8}  url   ({args.requests} requests each, as {args.user})")
    for url in args.urls:
        with CaptureQueriesContext(connection) as queries:
            get(url)
        taken = timings[url]
        p25 = statistics.quantiles(taken, n=4)[0]
        print(
            f"{statistics.median(taken) * 1000:6.1f} ms {p25 * 1000:6.1f} ms {min(taken) * 1000:6.1f} ms "
            f"{len(queries):>8}  {url}"
        )


if __name__ == "__main__":
    main()
