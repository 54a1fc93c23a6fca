"""Admin-authored message templates (email subject and body, in-app prompt, downgrade-save message), rendered
in a sandbox.

Django's template language, cut down to what a message needs:

- a flat context of plain values: every merge field is a string (or, for `premium_features`, a list of
  strings), converted before rendering, so nothing reaches a model, a setting, a method or a callable;
- no dotted lookups at all (`{{ account.owner.password }}`, `{{ x.__class__ }}`, `{{ name.upper }}`): they
  are refused when the template is checked, before anything renders;
- an allow-list of tags (`if`/`elif`/`else`/`endif`, one level of `for`/`empty`/`endfor`) and of filters;
  `{% load %}`, `{% include %}`, `{% extends %}`, `{% debug %}`, `{% autoescape %}`, `|safe` and the rest
  do not exist here;
- a size limit on the template and on what it renders.

The HTML kind escapes merge values (autoescape on); the text and subject kinds do not, and are still sandboxed.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from functools import cache

from django.template import Context, Engine, Library, TemplateSyntaxError, defaultfilters, defaulttags
from django.template.base import (
    FilterExpression,
    Lexer,
    NodeList,
    Template,
    TextNode,
    TokenType,
    Variable,
    VariableNode,
)
from django.template.defaulttags import ForNode, IfNode, TemplateLiteral

MAX_TEMPLATE_CHARS = 20_000
MAX_OUTPUT_CHARS = 100_000
# floatformat builds a string as long as the precision it is asked for: keep it to what money and ratios need.
MAX_FLOAT_DIGITS = 6


class Kind(StrEnum):
    SUBJECT = "subject"  # one line, merge values as typed
    TEXT = "text"  # a plain-text body or prompt, merge values as typed
    HTML = "html"  # an HTML body, merge values escaped


@dataclass(frozen=True, slots=True)
class MergeField:
    name: str
    description: str
    example: str | tuple[str, ...]

    @property
    def is_list(self) -> bool:
        return isinstance(self.example, tuple)


# The allow-list of merge fields. The examples fill the preview of a template.
MERGE_FIELDS: dict[str, MergeField] = {
    field.name: field
    for field in (
        MergeField("account_name", "The account's name", "Acme Analytics"),
        MergeField("current_plan", "Its current plan", "Basic"),
        MergeField("target_plan", "The plan offered", "Pro"),
        MergeField("target_price", "The offered plan's monthly price", "99.00 USD"),
        MergeField("price_delta", "What the upgrade adds to the monthly price", "70.00 USD"),
        MergeField("metric", "The metric closest to its limit", "Seats"),
        MergeField("utilization", "That metric's share of the limit", "92%"),
        MergeField("projected_limit_date", "When that limit will be reached at the current pace", "December 3, 2026"),
        MergeField("value_proposition", "What the higher plan solves, in the CSM's words", "Room for the new team."),
        MergeField("roi_note", "The ROI note of the presentation", "10 hours a month saved, worth 500.00 USD."),
        MergeField("trial_days", "Days of the trial offer", "14"),
        MergeField("trial_ends_on", "When the trial of the higher plan ends", "December 8, 2026"),
        MergeField("csm_name", "The CSM's name", "Casey Moreno"),
        MergeField("csm_email", "The CSM's email address", "casey@example.com"),
        MergeField(
            "premium_features",
            "Premium features the account used and how often (a list: use |join or a for loop)",
            ("Advanced reporting (37 times)", "API access (12 times)"),
        ),
    )
}

ALLOWED_TAGS = ("if", "elif", "else", "endif", "for", "empty", "endfor")


class TemplateRefused(ValueError):
    """The template is invalid or unsafe; `errors` says why, one message per problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__(" ".join(errors))
        self.errors = errors


class PlainList(list):
    """A list merge field: printed as is, it reads 'a, b, c' rather than a Python list."""

    def __str__(self) -> str:
        return ", ".join(self)


# --- The tags and filters of the sandbox (the engine's only builtins) ------------------------------------

register = Library()
register.tag("if", defaulttags.do_if)
register.tag("for", defaulttags.do_for)
for _name in ("default", "upper", "lower", "title", "capfirst", "pluralize", "join", "length", "truncatewords"):
    register.filter(_name, getattr(defaultfilters, _name))


@register.filter(is_safe=True)
def floatformat(value, arg=-1):
    """Django's floatformat with the number of digits clamped to ±MAX_FLOAT_DIGITS."""
    match = re.fullmatch(r"(-?\d+)([gu]*)", str(arg))
    if match is None:
        return defaultfilters.floatformat(value, -1)
    digits = max(-MAX_FLOAT_DIGITS, min(MAX_FLOAT_DIGITS, int(match[1])))
    return defaultfilters.floatformat(value, f"{digits}{match[2]}")


ALLOWED_FILTERS = tuple(sorted(register.filters))


class _SandboxEngine(Engine):
    # Not Django's default tags and filters: only this module's library.
    default_builtins: list[str] = []


@cache
def _engine() -> Engine:
    # No loaders: nothing here can read a file, even if a tag that loads one slipped through.
    return _SandboxEngine(loaders=[], libraries={}, builtins=["playbooks.sandbox"], string_if_invalid="")


# --- Checking -------------------------------------------------------------------------------------------


def template_errors(text: str, *, kind: Kind | str) -> list[str]:
    """Why the template cannot be saved (or rendered), one message per problem; empty when it is fine."""
    Kind(kind)
    try:
        _compile(text)
    except TemplateRefused as refused:
        return refused.errors
    return []


def _compile(text: str) -> Template:
    if len(text) > MAX_TEMPLATE_CHARS:
        raise TemplateRefused([f"The template is {len(text):,} characters long; the limit is {MAX_TEMPLATE_CHARS:,}."])
    errors = _tag_errors(text)
    if errors:
        raise TemplateRefused(errors)
    try:
        template = Template(text, engine=_engine())
    except TemplateSyntaxError as error:
        raise TemplateRefused([_syntax_message(error)]) from None
    errors = []
    _check_nodes(template.nodelist, scope=frozenset(MERGE_FIELDS), depth=0, errors=errors)
    if errors:
        raise TemplateRefused(errors)
    return template


def _tag_errors(text: str) -> list[str]:
    """Every block tag outside the allow-list, named with its line, before the parser sees any of them."""
    errors = []
    for token in Lexer(text).tokenize():
        if token.token_type != TokenType.BLOCK or not token.contents.split():
            continue
        name = token.contents.split()[0]
        if name not in ALLOWED_TAGS:
            errors.append(
                f"Line {token.lineno}: the tag {{% {name} %}} is not allowed. Allowed tags: {', '.join(ALLOWED_TAGS)}."
            )
    return errors


def _syntax_message(error: TemplateSyntaxError) -> str:
    message = re.sub(r" on line \d+", "", str(error))
    message = re.sub(r"\s*Did you forget to register or load this tag\?", "", message)
    if invalid := re.fullmatch(r"Invalid filter: '(.+)'", message):
        message = f"the filter |{invalid[1]} is not allowed. Allowed filters: {', '.join(ALLOWED_FILTERS)}."
    elif underscore := re.fullmatch(r"Variables and attributes may not begin with underscores: '(.+)'", message):
        message = f"{{{{ {underscore[1]} }}}}: names may not begin with an underscore; merge fields have no attributes."
    else:
        message = f"syntax error: {message}"
    token = getattr(error, "token", None)
    return f"Line {token.lineno}: {message}" if token is not None else message[0].upper() + message[1:]


def _check_nodes(nodelist: NodeList, *, scope: frozenset[str], depth: int, errors: list[str]) -> None:
    for node in nodelist:
        line = node.token.lineno if getattr(node, "token", None) is not None else 0
        if isinstance(node, TextNode):
            continue
        if isinstance(node, VariableNode):
            _check_expression(node.filter_expression, scope=scope, line=line, errors=errors)
        elif isinstance(node, IfNode):
            for condition, branch in node.conditions_nodelists:
                for expression in _condition_expressions(condition):
                    _check_expression(expression, scope=scope, line=line, errors=errors)
                _check_nodes(branch, scope=scope, depth=depth, errors=errors)
        elif isinstance(node, ForNode):
            if depth:
                errors.append(f"Line {line}: for loops cannot be nested.")
            _check_expression(node.sequence, scope=scope, line=line, errors=errors)
            inner = scope | frozenset(node.loopvars)
            _check_nodes(node.nodelist_loop, scope=inner, depth=depth + 1, errors=errors)
            _check_nodes(node.nodelist_empty, scope=scope, depth=depth, errors=errors)
        else:  # pragma: no cover - the library registers no other tag
            errors.append(f"Line {line}: {type(node).__name__} is not allowed.")


def _condition_expressions(condition) -> Iterable[FilterExpression]:
    """The expressions inside an {% if %} condition (a tree of operators over literals)."""
    if condition is None:
        return
    if isinstance(condition, TemplateLiteral):
        yield condition.value
        return
    for part in (getattr(condition, "first", None), getattr(condition, "second", None)):
        yield from _condition_expressions(part)


def _check_expression(expression: FilterExpression, *, scope: frozenset[str], line: int, errors: list[str]) -> None:
    variables = [expression.var] if expression.is_var else []
    variables += [arg for _, args in expression.filters for is_var, arg in args if is_var]
    for variable in variables:
        if not isinstance(variable, Variable) or variable.lookups is None:
            continue  # a literal: "text", 3, _("text")
        name = ".".join(variable.lookups)
        if len(variable.lookups) > 1:
            errors.append(
                f"Line {line}: {{{{ {name} }}}}: merge fields are plain values, so dotted names are not allowed."
            )
        elif name not in scope:
            close = difflib.get_close_matches(name, sorted(scope), n=1)
            hint = f" Did you mean {close[0]}?" if close else ""
            errors.append(f"Line {line}: unknown merge field {{{{ {name} }}}}.{hint}")


# --- Rendering ------------------------------------------------------------------------------------------


def sandbox_context(values: Mapping[str, object]) -> dict[str, str | PlainList]:
    """Every merge field as a plain string (list fields as lists of strings); missing ones are empty.

    Only str, int, float, Decimal, date, None and (for list fields) lists of those are accepted: a model
    instance or anything else is a programming error, raised as TypeError.
    """
    unknown = set(values) - set(MERGE_FIELDS)
    if unknown:
        raise ValueError(f"Not merge fields: {', '.join(sorted(unknown))}")
    context: dict[str, str | PlainList] = {}
    for name, field in MERGE_FIELDS.items():
        value = values.get(name)
        if field.is_list:
            items = [] if value is None or value == "" else value
            if not isinstance(items, list | tuple):
                raise TypeError(f"{name} takes a list, not {type(value).__name__}")
            context[name] = PlainList(_plain(item, name) for item in items)
        else:
            context[name] = _plain(value, name)
    return context


def _plain(value: object, name: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return str.__str__(value)  # a plain str even from a SafeString, so HTML bodies escape it
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, dt.date):  # datetimes included
        return f"{value:%B} {value.day}, {value.year}"
    raise TypeError(f"{name}: merge fields take plain values, not {type(value).__name__}")


def sandbox_render(text: str, values: Mapping[str, object], *, kind: Kind | str) -> str:
    """The template rendered with `values` (merge field -> plain value). Raises TemplateRefused.

    A subject comes out on one line with its whitespace collapsed (mail headers take no line breaks).
    """
    kind = Kind(kind)
    template = _compile(text)
    context = Context(sandbox_context(values), autoescape=kind == Kind.HTML)
    rendered = template.render(context)
    if len(rendered) > MAX_OUTPUT_CHARS:
        raise TemplateRefused([f"The rendered text is over {MAX_OUTPUT_CHARS:,} characters long."])
    if kind == Kind.SUBJECT:
        return " ".join(rendered.split())
    return str.__str__(rendered)


def sample_values(**overrides: object) -> dict[str, object]:
    """The merge fields' examples, as a preview shows them; `overrides` replaces some."""
    values: dict[str, object] = {name: field.example for name, field in MERGE_FIELDS.items()}
    values.update(overrides)
    return values
