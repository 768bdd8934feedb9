"""Webhook templates: Keptn's Go-template references rendered by a sandboxed Jinja2.

Keptn's WebhookConfig payloads, URLs and headers are Go templates over the event plus `.env`:
`{{.data.project}}`, `{{.data.evaluation.score}}`, `{{.id}}`, `{{.shkeptncontext}}`, `{{.env.token}}`.
Those references are turned into Jinja2 expressions (`{{ data.project }}`) and rendered in Jinja2's
sandbox with undefined values as errors, so a template can read the event but never call into Python,
and a reference to a missing field fails loudly instead of sending an empty value. Plain Jinja2 is
accepted as well (`{{ data.result | upper }}`, `{% if %}`). Go actions (`{{if}}`, `{{range}}`) are not:
the error says to use Jinja2's `{% if %}` instead. Pure: no I/O.
"""

from __future__ import annotations

import re
from typing import Any

from jinja2 import StrictUndefined, TemplateError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment

_EXPRESSION = re.compile(r"\{\{(-?)(.*?)(-?)\}\}", re.S)
_GO_PATH = re.compile(r"^\.(?:[A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)*)?$")
_GO_ACTIONS = ("if ", "else", "end", "range ", "with ", "define ", "template ", "block ")


class TemplateProblem(ValueError):
    """A template that cannot be rendered for this event; the message names the reference."""


def _jinja_path(go_path: str) -> str:
    parts = [part for part in go_path.split(".") if part]
    if not parts:
        raise TemplateProblem("`{{.}}` (the whole event) is not supported; name a field such as {{.data.project}}")
    out = parts[0] if parts[0].isidentifier() else f"_root[{parts[0]!r}]"
    for part in parts[1:]:
        out += f".{part}" if part.isidentifier() else f"[{part!r}]"
    return out


def to_jinja(template: str) -> str:
    """Keptn's `{{.a.b}}` references as Jinja2 `{{ a.b }}`; anything else is left as Jinja2."""

    def replace(match: re.Match[str]) -> str:
        left, inner, right = match.group(1), match.group(2).strip(), match.group(3)
        if _GO_PATH.match(inner):
            return "{{" + left + " " + _jinja_path(inner) + " " + right + "}}"
        if inner.startswith(_GO_ACTIONS) or inner == "end":
            raise TemplateProblem(f"the Go template action {{{{{inner}}}}} is not supported; "
                                  "use Jinja2 control blocks such as {% if data.result == 'fail' %}...{% endif %}")
        return match.group(0)

    return _EXPRESSION.sub(replace, template)


_ENVIRONMENT = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


def render(template: str, context: dict[str, Any], what: str = "template") -> str:
    """Render `template` (Go-style references or Jinja2) with `context` (the event plus `env`)."""
    if "{{" not in template and "{%" not in template:
        return template
    try:
        compiled = _ENVIRONMENT.from_string(to_jinja(template))
        return compiled.render({**context, "_root": context})
    except UndefinedError as error:
        raise TemplateProblem(f"{what}: {error.message}; the event has no such field (or the env secret is not "
                              "declared in envFrom)") from error
    except TemplateError as error:
        raise TemplateProblem(f"{what} is not a valid template: {error}") from error
