"""A queue row's markup, drawn in Python.

The queue draws 25 to 50 rows on every load, each with some thirty values and a form or two. Through the
template engine, looking up and escaping those values took more of the page's time than its queries, and
more than the rest of the page together. So the row is one format string here, every value escaped on the
way in, and the queue template only places the rows (tests/test_queue_markup.py reads them back).

Rows come from `opportunities.views._queue_rows`: plain values, every number already text.
"""

from __future__ import annotations

from html import escape

from django.utils.safestring import SafeString

ROW = (
    '<tr id="{dom_id}" class="queue-row{done}">\n'
    '<td class="num"><span class="score" title="Score out of 100">{score}</span></td>\n'
    '<th scope="row" class="account-cell"><a href="{account_url}">{account_name}</a>{shared}'
    '<div class="cell-sub">{segment}{status}</div>{tasks_due}</th>\n'
    '<td><span class="badge badge--plan {plan_class}">{plan_name}</span></td>\n'
    '<td class="num nowrap">{mrr}</td>\n'
    '<td class="reason-cell">{why_now}</td>\n'
    '<td><span class="badge {badge_class}"{badge_title}>{badge_label}</span></td>\n'
    '<td class="num">{days}</td>\n'
    '<td class="nowrap">{next_step}</td>\n'
    "{owner}"
    '<td class="actions-cell">\n{actions}\n</td>\n'
    "</tr>\n"
)
SHARED = (
    ' <span class="badge badge--shared" title="A colleague\'s opportunity you work on as a collaborator">'
    "Collaborating</span>"
)
TASKS_DUE = '<a class="badge badge--tasks-due" href="{url}" title="Open tasks due by today on {account}">{label}</a>'
STATUS = '{separator}<span class="status-text status-text--{status}">{label}</span>'
NEXT_STEP = '<time datetime="{iso}"{overdue}>{day}</time>'
NO_NEXT_STEP = '<span class="muted">—</span>'
CSRF = '<input type="hidden" name="csrfmiddlewaretoken" value="{token}">'
ADVANCE = (
    '<form method="post" action="{url}" hx-post="{url}">{csrf}<input type="hidden" name="version" value="{version}">'
    '<input type="hidden" name="to" value="{stage}"><input type="hidden" name="from" value="queue">\n'
    '<button type="submit" class="btn btn--secondary btn--xs" title="Move to {label}">→ {label}</button></form>'
)
# Snooze (and assign, for managers) load when asked for: into the row with htmx, as a page of their own without.
MORE = (
    '<a class="btn btn--ghost btn--xs" href="{url}" hx-get="{url}" hx-target="this" hx-swap="outerHTML" '
    'aria-label="More actions for {account}">More</a>'
)
REOPEN = (
    '<form method="post" action="{url}" hx-post="{url}">{csrf}<input type="hidden" name="version" value="{version}">'
    '<input type="hidden" name="from" value="queue">\n'
    '<button type="submit" class="btn btn--secondary btn--xs">Reopen</button></form>'
)


def queue_row_html(row: dict, *, csrf_token: str, show_owner: bool) -> SafeString:
    """One `<tr>` of the queue for `row` (see `_queue_rows`), its forms carrying `csrf_token`.

    Every value is escaped (quotes included) before it goes into the markup; only the fragments written here
    go in as they are. The standard library's escape is the one Django's own calls, without the lazy-string
    and SafeString handling around it, which cost more than the escaping.
    """
    e = {key: escape(value) for key, value in row.items() if isinstance(value, str)}
    csrf = CSRF.format(token=escape(csrf_token))
    if row["open"]:
        advance = ""
        if row["next_stage"]:
            advance = ADVANCE.format(
                url=e["advance_url"],
                csrf=csrf,
                version=e["version"],
                stage=e["next_stage"],
                label=e["next_stage_label"],
            )
        more = MORE.format(url=e["actions_url"], account=e["account_name"])
        actions = f'<div class="quick-actions">\n{advance}\n{more}\n</div>'
    elif row["back_from_snooze"]:
        actions = REOPEN.format(url=e["reopen_url"], csrf=csrf, version=e["version"])
    else:
        actions = ""
    if row["next_step"]:
        overdue = ' class="text-danger" title="Overdue"' if row["overdue"] else ""
        next_step = NEXT_STEP.format(iso=e["next_step_iso"], overdue=overdue, day=e["next_step"])
    else:
        next_step = NO_NEXT_STEP
    tasks_due = ""
    if row["tasks_due"]:
        tasks_due = TASKS_DUE.format(url=e["tasks_url"], account=e["account_name"], label=e["tasks_due"])
    markup = ROW.format(
        dom_id=e["dom_id"],
        done="" if row["in_queue"] else " queue-row--done",
        score=e["score"],
        account_url=e["account_url"],
        account_name=e["account_name"],
        shared=SHARED if row["shared"] else "",
        segment=e["segment"],
        status=STATUS.format(separator=" · " if row["segment"] else "", status=e["status"], label=e["status_label"])
        if row["status_label"]
        else "",
        tasks_due=tasks_due,
        plan_class=e["plan_class"],
        plan_name=e["plan_name"],
        mrr=e["mrr"],
        why_now=e["why_now"],
        badge_class=e["badge_class"],
        badge_title=f' title="{e["badge_title"]}"' if row["badge_title"] else "",
        badge_label=e["badge_label"],
        days=e["days"],
        next_step=next_step,
        owner=f'<td class="owner-cell">{e["owner_name"]}</td>\n' if show_owner else "",
        actions=actions,
    )
    # Every value in it was escaped above; tests/test_xss.py and tests/test_queue_markup.py put payloads through.
    return SafeString(markup)  # nosec B703
