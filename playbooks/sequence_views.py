"""The screens of automated plays: the step editor on a play's settings page (admins), and the "Plays running"
panel of the account page, where the account's CSM, managers and admins start, pause, resume and stop plays.

The editor is one section of the play page, swapped whole by every HTMX request (add, edit, delete, move),
with the messages out of band; without JavaScript its forms post and come back to the play page.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_http_methods, require_POST

from accounts.models import Account
from accounts.roles import is_admin, is_manager_or_admin
from playbooks import sequence_services
from playbooks.experiment_services import play_content_for
from playbooks.models import Enrollment, Play, SequenceStep
from playbooks.play_views import _sample_overrides
from playbooks.sandbox import Kind, TemplateRefused, sample_values, sandbox_render, template_errors
from playbooks.sequence_forms import EnrollmentStartForm, StepForm, StepMoveForm
from playbooks.sequence_selectors import account_enrollments
from playbooks.sequences import step_content
from playbooks.step_selectors import play_enrollment_counts, play_steps_with_results
from playbooks.step_services import (
    MAX_STEPS,
    StepRefused,
    sequence_step_add,
    sequence_step_delete,
    sequence_step_move,
    sequence_step_update,
)

EDITOR = "sequences/editor.html"
STEP_PAGE = "sequences/step_page.html"
# How the timeline preview names each kind of step.
KIND_WORDS = {
    SequenceStep.Kind.EMAIL: "email",
    SequenceStep.Kind.PROMPT: "prompt",
    SequenceStep.Kind.TASK: "task for the CSM",
    SequenceStep.Kind.NOTIFY: "note to the owner",
}


# --- The step editor (admins) ----------------------------------------------------------------------------


def _require_admin(request: HttpRequest) -> None:
    if not is_admin(request.user):
        raise PermissionDenied("Plays are configured by admins.")


def _partial(request: HttpRequest) -> bool:
    return bool(request.htmx) and not request.htmx.history_restore_request


def play_sample_values(play: Play) -> dict[str, object]:
    """The sample account the play's previews render for: its target plan and trial length."""
    return sample_values(**_sample_overrides({"target_plan": play.target_plan_id or "", "trial_days": play.trial_days}))


def _render_part(text: str, kind: Kind, values: Mapping[str, object]) -> dict:
    errors = template_errors(text, kind=kind) if text else []
    rendered = ""
    if text and not errors:
        try:
            rendered = sandbox_render(text, values, kind=kind)
        except TemplateRefused as refused:  # a template that renders too long
            errors = refused.errors
    return {"text": text, "rendered": rendered, "errors": errors}


def step_texts(play: Play, *, kind: str, subject: str, body: str, position: int) -> tuple[str, str, str, str]:
    """The subject and body a step sends, as the sequence engine picks them (`sequences.step_content`: blank
    ones fall back to the play's email or prompt, or to a default title), and where each came from: "" for
    the step's own text, else "the play’s" or "default"."""
    if kind not in SequenceStep.Kind.values:
        return subject, body, "", ""
    content = step_content(
        kind=kind,
        subject=subject,
        body=body,
        content=play_content_for(play=play, variant=None),
        play_name=play.name,
        position=position,
    )
    fallback = "the play’s" if kind in (SequenceStep.Kind.EMAIL, SequenceStep.Kind.PROMPT) else "default"
    return (
        content.subject,
        content.body,
        fallback if content.subject and not subject.strip() else "",
        fallback if content.body and not body.strip() else "",
    )


def step_preview(play: Play, data: Mapping[str, object], values: Mapping[str, object], *, position: int) -> dict:
    """What the step in `data` (the form's fields, unprefixed) sends, rendered for the sample account."""
    kind = str(data.get("kind") or "")
    subject, body, subject_from, body_from = step_texts(
        play, kind=kind, subject=str(data.get("subject") or ""), body=str(data.get("body") or ""), position=position
    )
    return {
        "kind": kind,
        "kind_label": SequenceStep.Kind(kind).label if kind in SequenceStep.Kind.values else "",
        "subject": {**_render_part(subject, Kind.SUBJECT, values), "from": subject_from},
        "body": {**_render_part(body, Kind.TEXT, values), "from": body_from},
        "account": values,
    }


def _step_words(play: Play, step: SequenceStep, values: Mapping[str, object]) -> str:
    """A step as the timeline preview says it: 'email “Room to grow”', 'prompt', 'task for the CSM “Call”'."""
    words = KIND_WORDS[step.kind]
    if step.kind in (SequenceStep.Kind.EMAIL, SequenceStep.Kind.TASK, SequenceStep.Kind.NOTIFY):
        subject, _, _, _ = step_texts(
            play, kind=step.kind, subject=step.subject, body=step.body, position=step.position
        )
        if subject:
            shown = _render_part(subject, Kind.SUBJECT, values)
            words += f" “{shown['rendered'] or subject}”"
    return words


def sequence_editor_context(
    play: Play, *, step_form: StepForm | None = None, editing: SequenceStep | None = None
) -> dict:
    """The step editor's context: the steps with their results and what may move, the timeline preview,
    the enrolments by status and stop reason, and the step form (a new step's unless `editing`)."""
    values = play_sample_values(play)
    steps = play_steps_with_results(play=play)
    for i, step in enumerate(steps):
        step.words = _step_words(play, step, values)
        step.can_move_up = i > 0 and steps[i - 1].delay_days == step.delay_days
        step.can_move_down = i < len(steps) - 1 and steps[i + 1].delay_days == step.delay_days
    if step_form is None:
        step_form = StepForm(play=play, instance=editing)
    return {
        "step_action": _step_action(play, editing),
        "play": play,
        "steps": steps,
        "counts": play_enrollment_counts(play=play),
        "step_form": step_form,
        "editing": editing,
        "step_preview": step_preview(play, _form_data(step_form), values, position=_position(steps, editing)),
        "max_steps": MAX_STEPS,
        "can_add": len(steps) < MAX_STEPS,
    }


def _position(steps: list[SequenceStep], editing: SequenceStep | None) -> int:
    return editing.position if editing is not None else len(steps) + 1


def _step_action(play: Play, editing: SequenceStep | None) -> str:
    if editing is None:
        return reverse("settings:play_step_create", args=[play.pk])
    return reverse("settings:play_step_edit", args=[play.pk, editing.pk])


def _form_data(form: StepForm) -> dict[str, object]:
    """The form's current values by field name: what was posted, else what it was drawn with."""
    return {name: form[name].value() or "" for name in ("kind", "subject", "body")}


def _editor_response(
    request: HttpRequest,
    play: Play,
    *,
    status: int = 200,
    step_form: StepForm | None = None,
    editing: SequenceStep | None = None,
) -> HttpResponse:
    """The editor section with the messages out of band (HTMX), or the step form's own page (no JavaScript)."""
    context = sequence_editor_context(play, step_form=step_form, editing=editing)
    if _partial(request):
        html = render_to_string(f"{EDITOR}#sequence", context, request=request)
        html += render_to_string("partials/messages.html", {"oob": True}, request=request)
        response = HttpResponse(html, status=status)
    else:
        response = render(request, STEP_PAGE, context, status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _done(request: HttpRequest, play: Play) -> HttpResponse:
    """After a change: the fresh editor (HTMX), or back to the play page at the editor."""
    if _partial(request):
        return _editor_response(request, play)
    return redirect(reverse("settings:play_edit", args=[play.pk]) + "#sequence")


def _refused(request: HttpRequest, play: Play, message: str) -> HttpResponse:
    messages.error(request, message)
    if _partial(request):
        return _editor_response(request, play, status=422)
    return redirect(reverse("settings:play_edit", args=[play.pk]) + "#sequence")


def _preview_response(request: HttpRequest, play: Play, form: StepForm, editing: SequenceStep | None) -> HttpResponse:
    """The preview of the posted step, nothing saved: its partial for HTMX, the step page otherwise."""
    if _partial(request):
        context = {
            "step_preview": step_preview(
                play,
                _form_data(form),
                play_sample_values(play),
                position=editing.position if editing else SequenceStep.objects.filter(play=play).count() + 1,
            ),
            "step_action": _step_action(play, editing),
        }
        response = render(request, f"{EDITOR}#step-preview", context)
        patch_vary_headers(response, ["HX-Request"])
        return response
    return _editor_response(request, play, step_form=form, editing=editing)


def _save_step(request: HttpRequest, play: Play, editing: SequenceStep | None) -> HttpResponse:
    form = StepForm(request.POST, play=play, instance=editing)
    if "preview" in request.POST:
        return _preview_response(request, play, form, editing)
    if form.is_valid():
        common = {"data": form.cleaned_data, "by": request.user, "at": timezone.now()}
        try:
            if editing is None:
                step = sequence_step_add(play=play, **common)
            else:
                step = sequence_step_update(step=editing, **common)
        except ValidationError as error:
            for field, problems in error.message_dict.items():
                form.add_error(field if field in form.fields else None, problems)
        except StepRefused as refusal:
            form.add_error(None, str(refusal))
        else:
            verb = "added" if editing is None else "saved"
            messages.success(request, f"Step {step.position} {verb}: day {step.delay_days}, {KIND_WORDS[step.kind]}.")
            return _done(request, play)
    messages.error(request, "Nothing was saved: please check the highlighted fields.")
    return _editor_response(request, play, status=422, step_form=form, editing=editing)


def _step_of(play_pk: int, step_pk: int) -> SequenceStep:
    return get_object_or_404(SequenceStep.objects.select_related("play"), pk=step_pk, play_id=play_pk)


@require_http_methods(["GET", "POST"])
def play_step_create(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: the form of a new step. POST `preview`: its preview. POST: add it, placed by its day."""
    _require_admin(request)
    play = get_object_or_404(Play, pk=pk)
    if request.method == "POST":
        return _save_step(request, play, None)
    return _editor_response(request, play)


@require_http_methods(["GET", "POST"])
def play_step_edit(request: HttpRequest, pk: int, step_pk: int) -> HttpResponse:
    """GET: the step's form. POST `preview`: its preview. POST: save it (a new day may move it)."""
    _require_admin(request)
    step = _step_of(pk, step_pk)
    if request.method == "POST":
        return _save_step(request, step.play, step)
    return _editor_response(request, step.play, editing=step)


@require_POST
def play_step_delete(request: HttpRequest, pk: int, step_pk: int) -> HttpResponse:
    _require_admin(request)
    step = _step_of(pk, step_pk)
    try:
        sequence_step_delete(step=step, by=request.user, at=timezone.now())
    except StepRefused as refusal:
        return _refused(request, step.play, str(refusal))
    messages.success(request, f"Step {step.position} deleted: day {step.delay_days}, {KIND_WORDS[step.kind]}.")
    return _done(request, step.play)


@require_POST
def play_step_move(request: HttpRequest, pk: int, step_pk: int) -> HttpResponse:
    """Move a step up or down among the steps of its day."""
    _require_admin(request)
    step = _step_of(pk, step_pk)
    form = StepMoveForm(request.POST)
    if not form.is_valid():
        return _refused(request, step.play, "Move a step up or down.")
    up = form.cleaned_data["direction"] == "up"
    try:
        moved = sequence_step_move(step=step, up=up, by=request.user, at=timezone.now())
    except StepRefused as refusal:
        return _refused(request, step.play, str(refusal))
    messages.success(request, f"Step moved {'up' if up else 'down'}: it is step {moved.position} now.")
    return _done(request, step.play)


# --- The account page's "Plays running" panel (the account's CSM, managers, admins) -------------------------

ACCOUNT_PANEL = "sequences/account_panel.html"


def may_run_plays(user, account: Account) -> bool:
    """The account's CSM, managers and admins start, pause, resume and stop its plays; a colleague brought onto
    one of its opportunities sees them only."""
    return is_manager_or_admin(user) or account.owner_id == user.pk


def account_plays_context(*, account: Account, user, start_form: EnrollmentStartForm | None = None) -> dict:
    """The panel's context: the account's enrolments (live first, each with its step runs) and, for those who
    may run plays, the form that starts one. Three queries, whatever the number of enrolments and steps."""
    may_run = may_run_plays(user, account)
    enrollments = account_enrollments(account_id=account.pk)
    return {
        "enrollments": enrollments,
        "plays_live": sum(1 for summary in enrollments if summary.is_live),
        "plays_editable": may_run,
        "play_start_form": (start_form or EnrollmentStartForm()) if may_run else None,
    }


def _account_or_404(request: HttpRequest, pk: int) -> Account:
    # Another CSM's account does not exist as far as this user is concerned, forged posts included.
    account = get_object_or_404(Account.objects.visible_to(request.user), pk=pk)
    if not may_run_plays(request.user, account):
        raise PermissionDenied("Plays are run by the account's CSM, managers and admins.")
    return account


def _enrollment_or_404(request: HttpRequest, pk: int) -> Enrollment:
    visible = Account.objects.visible_to(request.user)
    enrollment = get_object_or_404(
        Enrollment.objects.select_related("account", "play").filter(account__in=visible), pk=pk
    )
    if not may_run_plays(request.user, enrollment.account):
        raise PermissionDenied("Plays are run by the account's CSM, managers and admins.")
    return enrollment


def _panel_response(
    request: HttpRequest, account: Account, *, status: int = 200, start_form: EnrollmentStartForm | None = None
) -> HttpResponse:
    """The fresh panel with the messages out of band (HTMX); without JavaScript, back to the account page."""
    if not request.htmx:
        return redirect(account.get_absolute_url() + "#plays")
    context = {
        "account": account,
        **account_plays_context(account=account, user=request.user, start_form=start_form),
    }
    html = render_to_string(ACCOUNT_PANEL, context, request=request)
    html += render_to_string("partials/messages.html", {"oob": True}, request=request)
    response = HttpResponse(html, status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _enrollment_action(request: HttpRequest, pk: int, action, *, success: str) -> HttpResponse:
    """Run one service call on a visible enrolment; a refusal (it ended meanwhile, say) answers 422."""
    enrollment = _enrollment_or_404(request, pk)
    try:
        action(enrollment)
    except sequence_services.SequenceRefused as refusal:
        messages.error(request, str(refusal))
        return _panel_response(request, enrollment.account, status=422)
    messages.success(request, success.format(play=enrollment.play.name))
    return _panel_response(request, enrollment.account)


@require_POST
def enrollment_start(request: HttpRequest, pk: int) -> HttpResponse:
    """Start a play (active, with steps) on the account; its steps then run on their own, day by day."""
    account = _account_or_404(request, pk)
    form = EnrollmentStartForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(form.errors["play"]))
        return _panel_response(request, account, status=422, start_form=form)
    play = form.cleaned_data["play"]
    try:
        sequence_services.enrollment_start(account=account, play=play, at=timezone.now(), by=request.user)
    except sequence_services.SequenceRefused as refusal:
        messages.error(request, str(refusal))
        return _panel_response(request, account, status=422, start_form=form)
    messages.success(request, f"“{play.name}” started: its steps run on their own from today.")
    return _panel_response(request, account)


@require_POST
def enrollment_pause(request: HttpRequest, pk: int) -> HttpResponse:
    return _enrollment_action(
        request,
        pk,
        lambda enrollment: sequence_services.enrollment_pause(
            enrollment=enrollment, by=request.user, at=timezone.now()
        ),
        success="“{play}” paused: its steps wait until it is resumed.",
    )


@require_POST
def enrollment_resume(request: HttpRequest, pk: int) -> HttpResponse:
    return _enrollment_action(
        request,
        pk,
        lambda enrollment: sequence_services.enrollment_resume(
            enrollment=enrollment, by=request.user, at=timezone.now()
        ),
        success="“{play}” resumed: the steps left keep their spacing, moved on by the pause.",
    )


@require_POST
def enrollment_stop(request: HttpRequest, pk: int) -> HttpResponse:
    return _enrollment_action(
        request,
        pk,
        lambda enrollment: sequence_services.enrollment_stop(
            enrollment=enrollment, reason=Enrollment.StopReason.STOPPED_BY_USER, at=timezone.now(), by=request.user
        ),
        success="“{play}” stopped: its remaining steps are cancelled.",
    )
