"""The surveys pages: in the admin settings, the list of surveys and one form to create or edit a survey
with its questions; for customers, the public page an emailed link opens (`/s/<token>/`)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from accounts.models import Account
from accounts.roles import is_admin
from playbooks.models import Survey, SurveyResponse
from playbooks.survey_forms import AnswerForm, QuestionFormSet, SurveyForm, question_initial
from playbooks.survey_selectors import surveys_for_settings
from playbooks.surveys import (
    MAX_QUESTIONS,
    AnswerConflict,
    AnswerInvalid,
    SurveyNotOffered,
    UnknownSurvey,
    asks_reason,
    survey_answer_record,
    survey_link_ref,
    survey_save,
)

QUESTION_PREFIX = "questions"


def _require_admin(request: HttpRequest) -> None:
    if not is_admin(request.user):
        raise PermissionDenied("Surveys are configured by admins.")


@require_GET
def surveys(request: HttpRequest) -> HttpResponse:
    """Every survey: purpose, channel, who is asked, questions, whether it is on, answers and open requests."""
    _require_admin(request)
    return render(request, "settings/surveys/list.html", {"surveys": surveys_for_settings()})


@require_http_methods(["GET", "POST"])
def survey_create(request: HttpRequest) -> HttpResponse:
    _require_admin(request)
    return _survey_form_page(request, Survey())


@require_http_methods(["GET", "POST"])
def survey_edit(request: HttpRequest, pk: int) -> HttpResponse:
    _require_admin(request)
    survey = get_object_or_404(Survey.objects.prefetch_related("questions"), pk=pk)
    return _survey_form_page(request, survey)


def _survey_form_page(request: HttpRequest, survey: Survey) -> HttpResponse:
    """GET: the form, with the survey's questions in three rows. POST: save through survey_save, then the
    survey's page again; bad input answers 422 with the errors next to their fields and stores nothing."""
    status = 200
    if request.method == "POST":
        form = SurveyForm(request.POST, instance=survey)
        questions = QuestionFormSet(request.POST, prefix=QUESTION_PREFIX)
        if form.is_valid() and questions.is_valid():
            try:
                saved = survey_save(
                    survey=survey,
                    data={name: form.cleaned_data[name] for name in form.Meta.fields},
                    questions=[row.spec() for row in questions.filled()],
                    by=request.user,
                    at=timezone.now(),
                )
            except (ValueError, ValidationError) as error:
                form.add_error(None, error.messages if isinstance(error, ValidationError) else str(error))
            else:
                messages.success(request, f"Survey “{saved.name}” saved.")
                return redirect("settings:survey_edit", pk=saved.pk)
        status = 422
    else:
        form = SurveyForm(instance=survey)
        questions = QuestionFormSet(prefix=QUESTION_PREFIX, initial=question_initial(survey))
    answers = survey.responses.count() if survey.pk else 0
    context = {"survey": survey if survey.pk else None, "form": form, "questions": questions, "answers": answers}
    context["max_questions"] = MAX_QUESTIONS
    return render(request, "settings/surveys/form.html", context, status=status)


# --- The public page --------------------------------------------------------------------------------------


def _public_context(token: str) -> dict:
    """The survey, account and feedback request a link names; 404 for a forged, altered or expired link,
    or one whose survey or account is gone."""
    ref = survey_link_ref(token)
    if ref is None:
        raise Http404("This survey link is not valid.")
    survey = Survey.objects.filter(pk=ref.survey_id).prefetch_related("questions").first()
    account = Account.objects.filter(pk=ref.account_id).select_related("owner").first()
    if survey is None or account is None:
        raise Http404("This survey link is not valid.")
    answered = SurveyResponse.objects.filter(survey=survey, account=account)
    answered = answered.filter(request_id=ref.request_id) if ref.request_id else answered.filter(contact_ref="")
    return {
        "ref": ref,
        "survey": survey,
        "account": account,
        "answered": answered.order_by("-submitted_at").first(),
        "questions": sorted(survey.questions.all(), key=lambda q: q.position),
    }


@login_not_required
@require_http_methods(["GET", "POST"])
def survey_public(request: HttpRequest, token: str) -> HttpResponse:
    """The survey an emailed link asks, for the customer (no sign-in: the signed token is the key). GET shows
    the form and writes nothing; POST stores the answer as the account's, then shows the thanks (303 to the
    same page); bad answers come back with their errors (422) and store nothing. A link answered already
    says so; one whose survey was switched off is closed (410)."""
    context = _public_context(token)
    survey, account = context["survey"], context["account"]
    if not survey.active:
        return render(request, "settings/surveys/public.html", context | {"closed": True}, status=410)
    form = AnswerForm(request.POST or None, questions=context["questions"], asks_reason=asks_reason(survey))
    if request.method == "POST" and context["answered"] is None:
        form.is_valid()  # the fields check nothing: the service's checks name the problems
        try:
            survey_answer_record(
                survey_id=survey.pk,
                account=account,
                contact="",
                answers=form.answers(),
                reason=form.reason(),
                at=timezone.now(),
                request_id=context["ref"].request_id,
            )
        except (UnknownSurvey, SurveyNotOffered):
            return render(request, "settings/surveys/public.html", context | {"closed": True}, status=410)
        except AnswerConflict:
            pass  # answered meanwhile through the same link: the page says so
        except AnswerInvalid as error:
            for problem in error.errors:
                name = f"q{problem.path[1]}" if len(problem.path) == 2 else problem.path[0]
                form.add_error(name if name in form.fields else None, problem.message)
            return render(request, "settings/surveys/public.html", context | {"form": form}, status=422)
    if request.method == "POST":
        response = HttpResponse(status=303)
        response["Location"] = request.path
        return response
    return render(request, "settings/surveys/public.html", context | {"form": form})
