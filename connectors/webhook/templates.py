"""Webhook templates: Keptn's Go-template references rendered by a sandboxed Jinja2.

Keptn's WebhookConfig payloads, URLs and headers are Go templates over the event plus `.env`:
`{{.data.project}}`, `{{.data.evaluation.score}}`, `{{.id}}`, `{{.shkeptncontext}}`, `{{.env.token}}`.
Those references are turned into Jinja2 expressions (`{{ data.project }}`) and rendered in Jinja2's
sandbox with undefined values as errors, so a template can read the event but never call into Python,
and a reference to a missing field fails loudly instead of sending an empty value. Plain Jinja2 is
accepted as well (`{{ data.result | upper }}`, `{% if %}`). Go actions (`{{if}}`, `{{range}}`) are not:
the error says to use Jinja2's `{% if %}` instead. Pure: no I/O.

Bounded: a template is written by a resource author, so it may not allocate without limit. Operators
(`*`, `**`, `+`, `%`) whose result would exceed MAX_VALUE characters or items (or MAX_POWER_BITS bits),
calls and filters given an integer beyond MAX_ARGUMENT (`center(10**9)`, `range(10**9)`), more than
MAX_RANGE numbers from all `range()` calls of one rendering (nested loops) and printf or
format widths of five digits or more are refused, and rendering stops once the output passes
MAX_OUTPUT characters: `{{ "a" * 10**10 }}` answers at once with a TemplateProblem.

URLs (`render_url`): values from the event are URL-encoded (`/`, `?`, `#`, `@`, `:` cannot restructure
the URL) and must not decide the scheme, host or port, which are those written in the file (or in an
operator's `{{.env.x}}` secret, which is trusted and inserted as is).
"""

from __future__ import annotations

import contextvars
import functools
import re
from collections.abc import Callable, Iterable, Sized
from typing import Any
from urllib.parse import quote, urlsplit

from jinja2 import StrictUndefined, TemplateError, UndefinedError
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment, SecurityError

from tidegate.schemas.errors import TidegateError

MAX_OUTPUT = 1_000_000
"""Characters a rendered template may have."""
MAX_VALUE = 1_000_000
"""Characters or items any value computed by an operator, a call or a filter may have."""
MAX_ARGUMENT = 100_000
"""Largest integer a call or a filter may be given (widths, counts, ranges)."""
MAX_POWER_BITS = 4096
MAX_RANGE = 100_000
"""Numbers all `range()` calls of one rendering may make together, so nested loops stay bounded too."""
_RANGE_LEFT: contextvars.ContextVar[list[int]] = contextvars.ContextVar("tidegate_template_range_left")
_WIDE_FORMAT = re.compile(r"%[-#0 +]*(\d{5,}|\*)|%[-#0 +]*\d*\.\d{5,}|\{[^{}]*:[^{}]*\d{5,}[^{}]*\}")

_EXPRESSION = re.compile(r"\{\{(-?)(.*?)(-?)\}\}", re.S)
_GO_PATH = re.compile(r"^\.(?:[A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)*)?$")
_GO_ACTIONS = ("if ", "else", "end", "range ", "with ", "define ", "template ", "block ")


class TemplateProblem(TidegateError, ValueError):
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


class Trusted(str):
    """A value an operator gave (an `env` secret): inserted into a URL as is, not encoded."""


def _size(value: Any) -> int:
    return len(value) if isinstance(value, str | bytes | list | tuple | dict) else 0


def _check_value(value: Any) -> Any:
    if _size(value) > MAX_VALUE:
        raise SecurityError(f"a value of {_size(value)} characters or items is over the limit of {MAX_VALUE}")
    return value


def _check_arguments(args: Iterable[Any]) -> None:
    for arg in args:
        if isinstance(arg, int) and not isinstance(arg, bool) and abs(arg) > MAX_ARGUMENT:
            raise SecurityError(f"the number {arg} is over the limit of {MAX_ARGUMENT} for a call or filter")
        if isinstance(arg, str) and _WIDE_FORMAT.search(arg):
            raise SecurityError(f"the format {arg[:40]!r} has a width or precision over four digits")


def _bounded_filter(function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)  # keeps Jinja's pass_context/pass_environment marks
    def bounded(*args: Any, **kwargs: Any) -> Any:
        _check_arguments([*args, *kwargs.values()])
        return _check_value(function(*args, **kwargs))

    return bounded


def _bounded_range(*args: int) -> range:
    numbers = range(*args)
    left = _RANGE_LEFT.get(None)
    if left is not None:
        if len(numbers) > left[0]:
            raise SecurityError(f"range() would make more than {MAX_RANGE} numbers in one template")
        left[0] -= len(numbers)
    return numbers


def _sequence_times(left: Any, right: Any) -> int | None:
    """The length of `left * right` when one side is a sequence and the other an integer."""
    for sequence, count in ((left, right), (right, left)):
        if isinstance(sequence, Sized) and isinstance(count, int):
            return len(sequence) * max(count, 0)
    return None


class BoundedSandbox(SandboxedEnvironment):
    """Jinja2's sandbox with bounded sizes, through the hooks Jinja documents for this
    (`intercepted_binops`/`call_binop`, `call`, `wrap_str_format`); filters are wrapped the same way."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.filters = {name: _bounded_filter(function) for name, function in self.filters.items()}
        self.globals["range"] = _bounded_range

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            length = _sequence_times(left, right)
            if length is not None and length > MAX_VALUE:
                raise SecurityError(f"`*` would make {length} characters or items, over the limit of {MAX_VALUE}")
        elif operator == "**" and isinstance(left, int) and isinstance(right, int) and right > 0:
            if abs(left) > 1 and abs(left).bit_length() * right > MAX_POWER_BITS:
                raise SecurityError(f"`**` would make a number of more than {MAX_POWER_BITS} bits")
        elif operator == "+" and _size(left) + _size(right) > MAX_VALUE:
            raise SecurityError(f"`+` would make more than {MAX_VALUE} characters or items")
        elif operator == "%" and isinstance(left, str):
            _check_arguments([left])
        return _check_value(super().call_binop(context, operator, left, right))

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _check_arguments([*args, *kwargs.values()])
        return _check_value(super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:
            _check_arguments([value.__self__])  # the format string of `"{:9}".format(...)`
        return wrapped


def _encoded(value: Any) -> str:
    return value if isinstance(value, Trusted) else quote(str(value), safe="")


def _probe(value: Any) -> str:
    return value if isinstance(value, Trusted) else "x"


_OPTIONS: dict[str, Any] = {"undefined": StrictUndefined, "autoescape": False, "keep_trailing_newline": True}
_ENVIRONMENT = BoundedSandbox(**_OPTIONS)
_URL_ENVIRONMENT = BoundedSandbox(**_OPTIONS, finalize=_encoded)
_URL_PROBE = BoundedSandbox(**_OPTIONS, finalize=_probe)
"""Renders a URL with every event value replaced by `x`: the origin must not change with the event."""


def _render(environment: BoundedSandbox, template: str, context: dict[str, Any], what: str) -> str:
    budget = _RANGE_LEFT.set([MAX_RANGE])
    try:
        compiled = environment.from_string(to_jinja(template))
        size, parts = 0, []
        for part in compiled.generate({**context, "_root": context}):
            size += len(part)
            if size > MAX_OUTPUT:
                raise TemplateProblem(f"{what} renders more than {MAX_OUTPUT} characters; shorten the template")
            parts.append(part)
        return "".join(parts)
    except TemplateProblem:
        raise
    except UndefinedError as error:
        raise TemplateProblem(f"{what}: {error.message}; the event has no such field (or the env secret is not "
                              "declared in envFrom)") from error
    except SecurityError as error:
        raise TemplateProblem(f"{what} is refused: {error}") from error
    except TemplateError as error:
        raise TemplateProblem(f"{what} is not a valid template: {error}") from error
    except (OverflowError, MemoryError, ValueError, TypeError, ArithmeticError) as error:
        raise TemplateProblem(f"{what} cannot be rendered: {type(error).__name__}: {error}") from error
    finally:
        _RANGE_LEFT.reset(budget)


def render(template: str, context: dict[str, Any], what: str = "template") -> str:
    """Render `template` (Go-style references or Jinja2) with `context` (the event plus `env`)."""
    if "{{" not in template and "{%" not in template:
        return template
    return _render(_ENVIRONMENT, template, context, what)


def _origin(url: str) -> tuple[str, str, int | None] | None:
    try:
        parts = urlsplit(url)
        return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port
    except ValueError:
        return None


def render_url(template: str, context: dict[str, Any], what: str = "url") -> str:
    """Render a URL template: event values URL-encoded, and the scheme, host and port those of the file
    (or of a trusted `env` value); TemplateProblem when the event would decide them."""
    if "{{" not in template and "{%" not in template:
        return template
    url = _render(_URL_ENVIRONMENT, template, context, what)
    origin = _origin(url)
    if origin is None or origin != _origin(_render(_URL_PROBE, template, context, what)):
        raise TemplateProblem(f"{what}: the scheme, host and port of a webhook URL must be written in the file "
                              "(or come from an env secret), never from event data; put event values in the path "
                              "or the query")
    return url
