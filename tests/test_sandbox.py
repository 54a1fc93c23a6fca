"""Admin-authored templates render in a sandbox: plain merge fields, a few tags and filters, nothing else."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils.safestring import mark_safe

from playbooks.sandbox import MAX_TEMPLATE_CHARS, TemplateRefused, sample_values, sandbox_render, template_errors

VALUES = {"account_name": "Acme Analytics", "target_plan": "Pro", "utilization": "92%"}


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("{% load static %}{% static 'x.css' %}", "{% load %}"),
        ("{% include 'base.html' %}", "{% include %}"),
        ("{% extends 'base.html' %}", "{% extends %}"),
        ("{% debug %}", "{% debug %}"),
        ("{% csrf_token %}", "{% csrf_token %}"),
        ("{% autoescape off %}{{ account_name }}{% endautoescape %}", "{% autoescape %}"),
        ("{% now 'Y' %}", "{% now %}"),
    ],
)
def test_it_refuses_tags_outside_the_allow_list_naming_them(text, named):
    errors = template_errors(text, kind="text")

    assert len(errors) >= 1
    assert errors[0].startswith(f"Line 1: the tag {named} is not allowed")


@pytest.mark.parametrize(
    "text",
    [
        "{{ account.owner.password }}",
        "{{ settings.SECRET_KEY }}",
        "{{ account_name.upper }}",
        "{{ account_name.__class__ }}",
        "{{ account_name|default:settings.SECRET_KEY }}",
        "{% if account_name == account.owner.password %}yes{% endif %}",
        "{% for f in premium_features.pop %}{{ f }}{% endfor %}",
    ],
)
def test_it_refuses_attribute_traversal_before_rendering(text):
    errors = template_errors(text, kind="html")

    assert errors, text
    with pytest.raises(TemplateRefused):
        sandbox_render(text, VALUES, kind="html")


def test_it_refuses_a_dotted_name_with_a_message_that_names_it():
    assert template_errors("Hi\n{{ settings.SECRET_KEY }}", kind="text") == [
        "Line 2: {{ settings.SECRET_KEY }}: merge fields are plain values, so dotted names are not allowed."
    ]


def test_it_refuses_a_one_megabyte_template_without_parsing_it():
    text = "{{ account_name }} " * (1024 * 1024 // 19 + 1)

    assert len(text) > 1024 * 1024
    assert template_errors(text, kind="text") == [
        f"The template is {len(text):,} characters long; the limit is {MAX_TEMPLATE_CHARS:,}."
    ]


def test_it_names_an_unknown_merge_field_and_suggests_the_nearest():
    assert template_errors("Dear {{ acount_name }}", kind="text") == [
        "Line 1: unknown merge field {{ acount_name }}. Did you mean account_name?"
    ]


def test_it_refuses_filters_outside_the_allow_list():
    [error] = template_errors("{{ account_name|safe }}", kind="html")

    assert error.startswith("Line 1: the filter |safe is not allowed.")


def test_it_reports_a_syntax_error_with_its_line():
    [error] = template_errors("Hello\n\n{% if account_name %}no end", kind="text")

    assert error.startswith("Line 3: syntax error: Unclosed tag: 'if'")


def test_it_refuses_nested_loops():
    text = "{% for a in premium_features %}{% for b in premium_features %}{{ a }}{{ b }}{% endfor %}{% endfor %}"

    assert template_errors(text, kind="text") == ["Line 1: for loops cannot be nested."]


def test_it_renders_merge_fields_tags_and_filters():
    text = (
        "{{ account_name }} is at {{ utilization }}{% if projected_limit_date %}, full on {{ projected_limit_date }}"
        "{% endif %}. {{ target_plan|upper }} for {{ price_delta|default:'a little more' }}."
    )
    values = {**VALUES, "projected_limit_date": dt.date(2026, 12, 3)}

    assert sandbox_render(text, values, kind="text") == (
        "Acme Analytics is at 92%, full on December 3, 2026. PRO for a little more."
    )


def test_it_lists_premium_features_with_a_loop_or_join():
    values = {"premium_features": ["Advanced reporting (37 times)", "API access (12 times)"]}
    text = "{% for feature in premium_features %}- {{ feature }}\n{% empty %}nothing{% endfor %}" + (
        "{{ premium_features|length }} feature{{ premium_features|length|pluralize }}: {{ premium_features }}"
    )

    assert sandbox_render(text, values, kind="text") == (
        "- Advanced reporting (37 times)\n- API access (12 times)\n"
        "2 features: Advanced reporting (37 times), API access (12 times)"
    )


def test_it_escapes_merge_values_in_the_html_body_but_not_the_markup_around_them():
    values = {"account_name": "<script>alert(1)</script> & Co", "premium_features": ["<b>API</b>"]}
    text = "<p>Hi {{ account_name }}</p>{{ premium_features|join:', ' }}"

    assert sandbox_render(text, values, kind="html") == (
        "<p>Hi &lt;script&gt;alert(1)&lt;/script&gt; &amp; Co</p>&lt;b&gt;API&lt;/b&gt;"
    )


def test_it_escapes_even_a_value_marked_safe_by_the_caller():
    rendered = sandbox_render("{{ account_name }}", {"account_name": mark_safe("<b>Acme</b>")}, kind="html")

    assert rendered == "&lt;b&gt;Acme&lt;/b&gt;"


def test_it_leaves_the_text_body_and_subject_unescaped():
    values = {"account_name": "Smith & Sons <UK>"}

    assert sandbox_render("Hi {{ account_name }}", values, kind="text") == "Hi Smith & Sons <UK>"
    assert sandbox_render("{{ account_name }}\n on Pro", values, kind="subject") == "Smith & Sons <UK> on Pro"


def test_it_turns_plain_values_into_strings_and_refuses_anything_else():
    values = {"trial_days": 14, "utilization": 0.92, "price_delta": Decimal("70.00"), "trial_ends_on": None}

    assert sandbox_render(
        "{{ trial_days }}|{{ utilization }}|{{ price_delta }}|{{ trial_ends_on }}", values, kind="text"
    ) == ("14|0.92|70.00|")
    with pytest.raises(TypeError):
        sandbox_render("{{ account_name }}", {"account_name": object()}, kind="text")
    with pytest.raises(ValueError):
        sandbox_render("{{ account_name }}", {"settings": "x"}, kind="text")


def test_it_clamps_floatformat_so_a_template_cannot_ask_for_a_million_digits():
    assert sandbox_render("{{ utilization|floatformat:'1000000' }}", {"utilization": "0.5"}, kind="text") == "0.500000"


def test_the_examples_render_every_merge_field():
    text = " ".join("{{ " + name + " }}" for name in sample_values())

    assert template_errors(text, kind="text") == []
    assert "Acme Analytics" in sandbox_render(text, sample_values(), kind="text")
