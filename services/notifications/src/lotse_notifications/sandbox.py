"""Templates cannot stall the service: Jinja's immutable sandbox with bounded arithmetic, ranges and
string growth, output capped per part, and a time limit that stops a render from inside.

Tenants write template overrides, so a template is untrusted code. Jinja's sandbox keeps it from
reaching Python internals; this module bounds what it may cost:

- ``**``, ``*`` and ``%`` are checked before they run (a huge power or ``"x" * 10 ** 9`` would
  otherwise take minutes or gigabytes in one C call), as are the filters and string methods that
  grow a string by an argument (``center``, ``replace``, ``ljust``, ``join``, format widths …);
- ``range`` yields at most ``MAX_RANGE`` items;
- every value a template builds (list, tuple and dict literals, ``+``, ``*``, ``~``, what a filter, a
  function or a macro returns, captured output of ``{% set %}`` blocks, macros and ``{% filter %}``)
  and every value it turns into text is measured first (``weight``: characters, and an item per
  element, counted through nesting as often as ``str`` would write it): a list of a thousand
  references to a list of a thousand long strings is small to build but gigabytes as text, in one
  C call that holds the GIL (the service stops answering, and the time limit cannot interrupt it);
- ``render_within`` streams the output and stops past ``MAX_OUTPUT_CHARS``, and a trace function on
  the template's own frames stops it at its deadline: a loop is stopped where it is, in whichever
  thread it runs (renders run off the event loop, see ``templates.render_off_loop``).
"""

from __future__ import annotations

import itertools
import re
import sys
import time
from collections.abc import Callable, Mapping
from functools import wraps
from types import FrameType
from typing import Any

from jinja2 import Template, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.filters import FILTERS
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace

MAX_RANGE = 1_000
MAX_OUTPUT_CHARS = 200_000  # per part; a real message is a few thousand
# Messages count people and hours: results of ``**`` and ``*`` on integers stay within 64 bits
# (Jinja's ``**`` binds to the left: ``9 ** 9 ** 9`` is ``(9 ** 9) ** 9``, 261 bits, refused).
MAX_INT_BITS = 64
# A width or precision of four digits or more, a width taken from an argument, or a nested field
# (``%(name)999999999s`` too: a mapping key may come before the flags).
_WIDE_FORMAT = re.compile(r"%(\([^)]*\))?[-#0 +]*(\*|\d{4,}|\d*\.(\*|\d{4,}))|\{[^{}]*:[^{}]*(\d{4,}|\{)")
# Largest JSON indent (``tojson(indent=10 ** 9)`` writes that many spaces per line).
MAX_JSON_INDENT = 16


class RenderTimeUp(BaseException):
    """Raised inside a render at its deadline. Not an ``Exception``, so that nothing on the way
    (Jinja's own ``except Exception`` blocks included) can swallow it."""


class OutputTooLarge(SecurityError):
    pass


def _bounded(size: int, what: str) -> None:
    if size > MAX_OUTPUT_CHARS:
        raise OutputTooLarge(f"{what} would make more than {MAX_OUTPUT_CHARS} characters")


def weight(value: Any, budget: int = MAX_OUTPUT_CHARS) -> int:
    """What ``value`` costs as text, roughly: the characters of a string, one for anything else,
    counted through lists, tuples, sets, dicts and namespaces as often as they are referenced (as
    ``str`` writes them). Stops counting once past ``budget``, so it never walks more than that."""
    total = 0
    pending = [value]
    while pending and total <= budget:
        item = pending.pop()
        total += len(item) if isinstance(item, str) else 1
        if isinstance(item, Namespace):
            item = item._Namespace__attrs  # what its repr writes
        if isinstance(item, Mapping):
            pending.extend(itertools.islice(itertools.chain.from_iterable(item.items()), budget - total + 1))
        elif isinstance(item, list | tuple | set | frozenset):
            pending.extend(itertools.islice(item, budget - total + 1))
    return total


def checked(value: Any, what: str = "a value") -> Any:
    """``value``, if it stays within ``MAX_OUTPUT_CHARS`` as text (see ``weight``)."""
    if not isinstance(value, int | float) and weight(value) > MAX_OUTPUT_CHARS:
        raise OutputTooLarge(f"{what} would make more than {MAX_OUTPUT_CHARS} characters")
    return value


class BoundedBuffer(list[str]):
    """The output a macro, a ``{% set %}`` block or a ``{% filter %}`` block captures: stops past
    ``MAX_OUTPUT_CHARS`` (each piece is bounded, but a loop may add a million of them)."""

    size = 0

    def append(self, item: str) -> None:
        self._grow(len(item))
        super().append(item)

    def extend(self, items: Any) -> None:
        items = list(items)
        self._grow(sum(len(item) for item in items if isinstance(item, str)))
        super().extend(items)

    def _grow(self, size: int) -> None:
        self.size += size
        if self.size > MAX_OUTPUT_CHARS:
            raise OutputTooLarge(f"captured output would make more than {MAX_OUTPUT_CHARS} characters")


class BoundedCodeGenerator(CodeGenerator):
    """Jinja's compiler, with literals, ``~`` and captured output measured at run time."""

    def buffer(self, frame: Frame) -> None:
        frame.buffer = self.temporary_identifier()
        self.writeline(f"{frame.buffer} = environment.bounded_buffer()")

    def _checked(self, visit: Callable[[Any, Frame], None], node: nodes.Node, frame: Frame) -> None:
        self.write("environment.checked(")
        visit(node, frame)
        self.write(")")

    def visit_List(self, node: nodes.List, frame: Frame) -> None:
        self._checked(super().visit_List, node, frame)

    def visit_Dict(self, node: nodes.Dict, frame: Frame) -> None:
        self._checked(super().visit_Dict, node, frame)

    def visit_Tuple(self, node: nodes.Tuple, frame: Frame) -> None:
        if node.ctx != "load":  # an assignment target: {% for a, b in … %}, {% set a, b = … %}
            super().visit_Tuple(node, frame)
        else:
            self._checked(super().visit_Tuple, node, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        # As Jinja's, with each part measured before it becomes text, and the result.
        if frame.eval_ctx.volatile:
            join = "(markup_join if context.eval_ctx.volatile else str_join)"
        else:
            join = "markup_join" if frame.eval_ctx.autoescape else "str_join"
        self.write(f"environment.checked({join}((")
        for part in node.nodes:
            self._checked(self.visit, part, frame)
            self.write(", ")
        self.write(")))")


def _check_binop(operator: str, left: Any, right: Any) -> None:
    if operator == "**" and isinstance(left, int) and isinstance(right, int) and right > 0:
        if max(abs(left).bit_length(), 1) * right > MAX_INT_BITS:
            raise SecurityError(f"{left} ** {right} is too large")
    elif operator == "*":
        if isinstance(left, int) and isinstance(right, int):
            if abs(left).bit_length() + abs(right).bit_length() > MAX_INT_BITS:
                raise SecurityError("the product is too large")
        elif isinstance(left, str | list | tuple) and isinstance(right, int):
            _bounded(len(left) * right, "repeating")
        elif isinstance(right, str | list | tuple) and isinstance(left, int):
            _bounded(len(right) * left, "repeating")
    elif operator == "%" and isinstance(left, str) and _WIDE_FORMAT.search(left):
        raise SecurityError("format widths and precisions are limited to three digits")


def _joined_size(separator: str, items: list[Any]) -> int:
    return len(separator) * max(len(items) - 1, 0) + sum(len(str(item)) for item in items)


def _replaced_size(text: str, old: str, new: str) -> int:
    occurrences = text.count(old) if old else len(text) + 1
    return len(text) + occurrences * max(len(new) - len(old), 0)


def _check_str_method(text: str, name: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """The arguments to call ``text.<name>`` with (a one-shot iterable becomes a list)."""
    if name in {"ljust", "rjust", "center", "zfill"} and args and isinstance(args[0], int):
        _bounded(args[0], name)
    elif name == "expandtabs":
        _bounded(len(text) + text.count("\t") * (args[0] if args and isinstance(args[0], int) else 8), name)
    elif name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        _bounded(_replaced_size(text, args[0], args[1]), name)
    elif name == "join" and args:
        items = list(args[0])
        _bounded(_joined_size(text, items), name)
        args = (items, *args[1:])
    elif name in {"format", "format_map"} and _WIDE_FORMAT.search(text):
        raise SecurityError("format widths and precisions are limited to three digits")
    return args


def bounded_range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise SecurityError(f"range is limited to {MAX_RANGE} items")
    return numbers


def _guarded_filter(name: str, check: Callable[..., None]) -> Callable[..., Any]:
    original = FILTERS[name]

    @wraps(original)  # keeps Jinja's pass_context/pass_environment marker
    def guarded(*args: Any, **kwargs: Any) -> Any:
        check(*_filter_args(original, args), **kwargs)
        return original(*args, **kwargs)

    return guarded


def _filter_args(original: Callable[..., Any], args: tuple[Any, ...]) -> tuple[Any, ...]:
    # Filters marked pass_environment / pass_eval_context get that first; the checks want the value.
    return args[1:] if getattr(original, "jinja_pass_arg", None) is not None else args


def _check_center(value: Any, width: int = 80, *_: Any, **__: Any) -> None:
    _bounded(int(width), "center")


def _check_indent(value: Any, width: int | str = 4, *_: Any, **__: Any) -> None:
    per_line = len(width) if isinstance(width, str) else int(width)
    _bounded(len(str(value)) + per_line * (str(value).count("\n") + 1), "indent")


def _check_replace(value: Any, old: str = "", new: str = "", *_: Any, **__: Any) -> None:
    _bounded(_replaced_size(str(value), str(old), str(new)), "replace")


def _check_wordwrap(
    value: Any, width: int = 79, break_long_words: bool = True, wrapstring: str | None = None, *_: Any, **__: Any
) -> None:
    lines = len(str(value)) // max(int(width), 1) + 1
    _bounded(len(str(value)) + lines * len(wrapstring or "\n"), "wordwrap")


def _bounded_join(original: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(original)
    def join(eval_context: Any, value: Any, d: str = "", attribute: Any = None) -> Any:
        items = list(value)  # once: a generator would be used up by the check
        _bounded(_joined_size(str(d), items), "join")
        return original(eval_context, items, d, attribute)

    return join


def _check_format(value: Any, *_: Any, **__: Any) -> None:
    if _WIDE_FORMAT.search(str(value)):
        raise SecurityError("format widths and precisions are limited to three digits")


def _check_batch(value: Any, linecount: int = 1, fill_with: Any = None, *_: Any, **__: Any) -> None:
    if fill_with is not None:  # fills the last batch up to linecount in one allocation
        _bounded(int(linecount) * weight(fill_with), "batch")


def _check_slice(value: Any, slices: int = 1, *_: Any, **__: Any) -> None:
    if int(slices) > MAX_RANGE:
        raise SecurityError(f"slice is limited to {MAX_RANGE} slices")


def _check_tojson(value: Any, indent: int | str | None = None, *_: Any, **__: Any) -> None:
    if indent is not None and (len(indent) if isinstance(indent, str) else int(indent)) > MAX_JSON_INDENT:
        raise SecurityError(f"tojson's indent is limited to {MAX_JSON_INDENT}")


def _check_sum(iterable: Any, attribute: Any = None, start: Any = 0, *_: Any, **__: Any) -> None:
    if not isinstance(start, int | float):  # adding lists copies them again at every step
        raise SecurityError("sum adds numbers only")


def _checked_filter(original: Callable[..., Any]) -> Callable[..., Any]:
    """A filter whose arguments are measured before it runs (``string``, ``tojson``, ``pprint``
    … turn them into text) and whose result is measured after."""

    @wraps(original)  # keeps Jinja's pass_context/pass_environment marker
    def measured(*args: Any, **kwargs: Any) -> Any:
        for value in (*_filter_args(original, args), *kwargs.values()):
            checked(value, "a filter's argument")
        return checked(original(*args, **kwargs), "a filter's result")

    return measured


class MeasuredFilters(dict[str, Callable[..., Any]]):
    """The filters, each measured (``_checked_filter``), those added later too."""

    def __init__(self, filters: Mapping[str, Callable[..., Any]]) -> None:
        super().__init__()
        for name, original in filters.items():
            self[name] = original

    def __setitem__(self, name: str, original: Callable[..., Any]) -> None:
        super().__setitem__(name, _checked_filter(original))


class BoundedSandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"**", "*", "%", "+"})
    code_generator_class = BoundedCodeGenerator
    bounded_buffer = BoundedBuffer
    checked = staticmethod(checked)

    def __init__(self, **options: Any) -> None:
        # Every {{ value }} is measured before it becomes text.
        options.setdefault("finalize", lambda value: checked(value, "an output"))
        super().__init__(**options)
        self.globals["range"] = bounded_range
        checks: dict[str, Callable[..., None]] = {
            "center": _check_center,
            "indent": _check_indent,
            "replace": _check_replace,
            "wordwrap": _check_wordwrap,
            "format": _check_format,
            "batch": _check_batch,
            "slice": _check_slice,
            "tojson": _check_tojson,
            "sum": _check_sum,
        }
        for name, check in checks.items():
            self.filters[name] = _guarded_filter(name, check)
        self.filters["join"] = _bounded_join(FILTERS["join"])
        self.filters = MeasuredFilters(self.filters)
        del self.globals["lipsum"]  # generates any amount of text

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _check_binop(operator, checked(left), checked(right))
        return checked(super().call_binop(context, operator, left, right), f"{operator}")

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        # The sandbox hands out its own str.format when a template reads the attribute.
        owner = getattr(value, "__self__", None)
        if isinstance(owner, str) and getattr(value, "__name__", "") in {"format", "format_map"}:
            _check_str_method(owner, value.__name__, ())
        return super().wrap_str_format(value)

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        owner = getattr(obj, "__self__", None)
        if isinstance(owner, str):
            args = _check_str_method(owner, getattr(obj, "__name__", ""), args)
        for value in (*args, *kwargs.values()):
            checked(value, "an argument")
        return checked(super().call(context, obj, *args, **kwargs), "a call's result")


def render_within(template: Template, context: Mapping[str, Any], deadline: float) -> str:
    """Render, stopping with ``RenderTimeUp`` at ``deadline`` (``time.monotonic()``) and with
    ``OutputTooLarge`` past ``MAX_OUTPUT_CHARS``. The trace function runs only in this thread and
    looks at the clock on every line of the template's own code, so a loop that yields no output
    stops too; the previous trace function (a debugger's, coverage's) is restored afterwards."""

    def on_line(frame: FrameType, event: str, arg: Any) -> Any:
        if time.monotonic() > deadline:
            raise RenderTimeUp
        return on_line

    def on_call(frame: FrameType, event: str, arg: Any) -> Any:
        if time.monotonic() > deadline:
            raise RenderTimeUp
        return on_line if frame.f_code.co_filename == "<template>" else None

    chunks: list[str] = []
    size = 0
    previous = sys.gettrace()
    sys.settrace(on_call)
    try:
        for chunk in template.generate(context):
            size += len(chunk)
            if size > MAX_OUTPUT_CHARS:
                raise OutputTooLarge(f"the output is longer than {MAX_OUTPUT_CHARS} characters")
            chunks.append(chunk)
    finally:
        sys.settrace(previous)
    return "".join(chunks)
