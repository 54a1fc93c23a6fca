"""The project's form renderer draws Django's field, label, error and input templates in Python
(upsell_crm/form_renderer.py). Every form of the product must come out the same as through Django's own
templates: unbound, and bound to input that fails, where the errors and the echoed values are drawn."""

import datetime as dt
import re

import pytest
from django import forms
from django.forms.renderers import DjangoTemplates, get_default_renderer
from django.test.html import parse_html

from accounts.import_forms import ImportUploadForm
from accounts.models import Metric
from accounts.settings_forms import AuditFilterForm, MetricForm, PlanForm, TokenForm
from accounts.work_forms import NotificationSettingsForm, TaskFilterForm, TaskForm
from opportunities import forms as panel
from opportunities.insights_views import AdoptionOptions, CohortOptions
from opportunities.metrics_views import PeriodForm
from opportunities.settings_views import LostReasonForm
from playbooks.experiment_forms import ExperimentForm, VariantForm
from playbooks.models import Play, Rule
from playbooks.play_forms import PlayForm
from playbooks.rule_forms import RuleForm
from playbooks.sequence_forms import EnrollmentStartForm, StepForm, StepMoveForm
from playbooks.survey_forms import QuestionForm, SurveyForm
from tests.factories import OpportunityFactory, plan
from upsell_crm.form_renderer import FormRenderer

TODAY = dt.date(2026, 11, 20)
# What a careless or hostile user types into every field: not a number, not a date, not a choice, and markup.
JUNK = '<b onmouseover="x()">&amp; "quoted" \'single\'</b>'


def _builders(opportunity):
    """Each form of the product as its page builds it, given data (None for unbound) and a renderer."""
    play = Play.objects.create(name="Seats nudge", target_plan=plan("Pro"))
    rule = Rule.objects.first() or Rule(name="New rule")
    metrics = list(Metric.objects.all())
    return {
        "task": lambda data, r: TaskForm(data, today=TODAY, renderer=r),
        "task filter": lambda data, r: TaskFilterForm(data, manager=True, renderer=r),
        "notification settings": lambda data, r: NotificationSettingsForm(data, admin=True, renderer=r),
        "import upload": lambda data, r: ImportUploadForm(data, renderer=r),
        "plan": lambda data, r: PlanForm(data, renderer=r),
        "metric": lambda data, r: MetricForm(data, in_use=False, renderer=r),
        "token": lambda data, r: TokenForm(data, renderer=r),
        "audit filter": lambda data, r: AuditFilterForm(data, renderer=r),
        "period": lambda data, r: PeriodForm(data, renderer=r),
        "adoption options": lambda data, r: AdoptionOptions(data, renderer=r),
        "cohort options": lambda data, r: CohortOptions(data, features=["exports"], metrics=metrics, renderer=r),
        "lost reason": lambda data, r: LostReasonForm(data, renderer=r),
        "advance": lambda data, r: panel.AdvanceForm(data, initial={"version": 1}, renderer=r),
        "snooze": lambda data, r: panel.SnoozeForm(data, initial={"version": 1}, renderer=r),
        "assign": lambda data, r: panel.AssignForm(data, renderer=r),
        "collaborator add": lambda data, r: panel.CollaboratorAddForm(data, opportunity=opportunity, renderer=r),
        "collaborator remove": lambda data, r: panel.CollaboratorRemoveForm(data, opportunity=opportunity, renderer=r),
        "qualify": lambda data, r: panel.QualifyForm(data, initial={"business_goals": JUNK}, renderer=r),
        "present": lambda data, r: panel.PresentForm(
            data, current_plan=plan("Basic"), today=TODAY, trial_days=14, renderer=r
        ),
        "email": lambda data, r: panel.EmailForm(data, initial={"subject": JUNK, "body": JUNK}, renderer=r),
        "close": lambda data, r: panel.CloseForm(data, today=TODAY, renderer=r),
        "note": lambda data, r: panel.NoteForm(data=data, renderer=r),
        "reassign": lambda data, r: panel.ReassignForm(data, renderer=r),
        "survey": lambda data, r: SurveyForm(data, renderer=r),
        "question": lambda data, r: QuestionForm(data, renderer=r),
        "experiment": lambda data, r: ExperimentForm(data, renderer=r),
        "variant": lambda data, r: VariantForm(data, renderer=r),
        "play": lambda data, r: PlayForm(data, renderer=r),
        "step": lambda data, r: StepForm(data, play=play, renderer=r),
        "step move": lambda data, r: StepMoveForm(data, renderer=r),
        "start a play": lambda data, r: EnrollmentStartForm(data, renderer=r),
        "rule": lambda data, r: RuleForm(data, rule=rule, renderer=r),
    }


class EveryWidget(forms.Form):
    """The cases the Python drawing must get right beyond the product's forms: escaping of values, labels,
    help and attributes, fieldsets, option groups, bare and dropped attributes, a field without a label."""

    text = forms.CharField(label='Name <i>"quoted"</i>', help_text="<em>Help</em> is <b>safe</b> markup", initial=JUNK)
    email = forms.EmailField(required=False, widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    number = forms.DecimalField(min_value=0, max_digits=6, decimal_places=2, initial="12.50")
    day = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), initial=TODAY)
    flag = forms.BooleanField(required=False, initial=True)
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "class": 'a "b"'}), initial="line 1\nline 2")
    hidden = forms.CharField(widget=forms.HiddenInput, initial=JUNK)
    unlabelled = forms.CharField(label="", required=False)
    disabled = forms.CharField(disabled=True, required=False, initial="fixed")
    pick = forms.ChoiceField(
        widget=forms.RadioSelect(attrs={"class": "inline"}),
        choices=[("a", "A <i>one</i>"), ("<i>Group</i> & co", [("b", "B"), ("c", "C")])],
        help_text="One of them",
    )
    toggles = forms.MultipleChoiceField(
        widget=forms.CheckboxSelectMultiple, choices=[("x", "X"), ("y", "Y")], required=False
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["number"].widget.attrs.update({"data-off": False, "readonly": True})

    def clean(self):
        raise forms.ValidationError("A form-wide error <with markup>.")


def drawn_both_ways(build, data) -> tuple[str, str]:
    """The form's markup through Django's templates and through the project's renderer."""
    drawn = []
    for renderer in (DjangoTemplates(), FormRenderer()):
        form = build(data, renderer)
        if data is not None:
            form.is_valid()
        drawn.append(form.as_div() + "".join(field.as_field_group() for field in form))
    return drawn[0], drawn[1]


def _squeezed(html: str) -> str:
    """The markup with runs of white space made one space and none left between tags: Django's templates
    are indented and break lines where the Python drawing does not."""
    return re.sub(r">\s+<", "><", re.sub(r"\s+", " ", html)).strip()


def assert_same_html(by_django: str, by_renderer: str, name: str) -> None:
    # The same elements, attributes and text; and, character for character, the same escaping.
    assert parse_html(by_renderer) == parse_html(by_django), f"{name}: the renderer draws different HTML"
    assert _squeezed(by_renderer) == _squeezed(by_django), f"{name}: the renderer escapes differently"


@pytest.mark.django_db
def test_every_form_of_the_product_is_drawn_as_djangos_templates_draw_it(account):
    opportunity = OpportunityFactory(account=account)
    for name, build in _builders(opportunity).items():
        unbound = build(None, DjangoTemplates())
        junk = {key: JUNK for key in unbound.fields}
        for data in (None, {}, junk):
            by_django, by_renderer = drawn_both_ways(build, data)
            assert_same_html(by_django, by_renderer, f"{name} with {data!r}")


def test_escaping_fieldsets_and_option_groups_come_out_as_djangos_templates_draw_them():
    # Without a label suffix, Django hands the label over unescaped (the panel's forms have none).
    for suffix in (None, ""):
        for data in (None, {"text": JUNK, "number": "-1", "day": "31/02", "pick": "z", "toggles": ["q"]}):
            build = lambda d, r: EveryWidget(d, renderer=r, label_suffix=suffix)  # noqa: E731, B023
            by_django, by_renderer = drawn_both_ways(build, data)
            assert_same_html(by_django, by_renderer, f"every widget with {data!r}, label suffix {suffix!r}")
            assert "&lt;b onmouseover" in by_renderer and "<b onmouseover" not in by_renderer
            assert "&lt;i&gt;&quot;quoted&quot;&lt;/i&gt;" in by_renderer


def test_the_product_draws_its_forms_with_its_renderer():
    assert isinstance(get_default_renderer(), FormRenderer)
    assert isinstance(TaskForm(today=TODAY).renderer, FormRenderer)
