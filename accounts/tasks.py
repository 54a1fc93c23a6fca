import datetime as dt

from celery import shared_task

from accounts.services import account_indicators_refresh


@shared_task(name="accounts.refresh_indicators", queue="pipeline", ignore_result=True)
def refresh_indicators(*, as_of: str, account_ids: list[int] | None = None) -> None:
    account_indicators_refresh(as_of=dt.date.fromisoformat(as_of), account_ids=account_ids)
