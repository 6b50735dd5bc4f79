"""Templates cannot stall the service: a tenant's override that would compute, loop or write without
end is refused when it is checked (and stopped when it is rendered), naming the part."""

from __future__ import annotations

import asyncio

import pytest

from lotse_notifications import catalogue
from lotse_notifications.templates import (
    RenderFailed,
    TemplateSource,
    check_source,
    render,
    render_off_loop,
    sample_facts,
)

NESTED_RANGES = "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}"
# Within the range bound, but a billion iterations without a single character of output.
SILENT_LOOPS = (
    "{% for a in range(1000) %}{% for b in range(1000) %}{% for c in range(1000) %}{% endfor %}{% endfor %}{% endfor %}"
)

HOSTILE = [
    "{{ 9 ** 9 ** 9 }}",
    NESTED_RANGES,
    "{% for a in range(1000) %}{% for b in range(1000) %}x{% endfor %}{% endfor %}",  # a million characters
    '{{ "x" * 1000000000 }}',
    '{{ ["x"] * 1000000000 }}',
    '{{ "x".ljust(1000000000) }}',
    '{{ "x".center(10 ** 9) }}',
    '{{ "%999999999s" % 1 }}',
    '{{ "{:999999999}".format(1) }}',
    '{{ "%s"|format(1) ~ ("%999999999d"|format(1)) }}',
    '{{ "x"|center(1000000000) }}',
    '{{ ("a" * 20000)|replace("a", "b" * 100000) }}',
    '{{ ("a" * 20000).replace("a", "b" * 100000) }}',
    '{{ range(1000)|join("y" * 200000) }}',
    '{{ ("y" * 200000).join(range(1000)|map("string")) }}',
    '{{ ("x\\ny" * 1000)|indent(100000) }}',
    "{{ lipsum(1000000) }}",
]


@pytest.mark.parametrize("template", HOSTILE)
def test_an_override_that_would_stall_the_service_is_refused_naming_the_part(template: str) -> None:
    problems = check_source(catalogue.WELCOME, "de", TemplateSource("Hallo", template))
    assert [problem["field"] for problem in problems] == ["text"], problems


def test_an_override_that_loops_without_output_is_stopped_at_its_time_limit() -> None:
    (problem,) = check_source(catalogue.WELCOME, "de", TemplateSource("Hallo", SILENT_LOOPS), time_limit=0.2)
    assert problem["field"] == "text" and "took longer than 0.2 s" in problem["message"]


def test_small_arithmetic_loops_and_formats_still_work() -> None:
    source = TemplateSource(
        "{{ 2 ** 10 }} {{ '%05.1f' % 3.14159 }} {{ '{:>6}'.format('ok') }}",
        "{% for i in range(3) %}{{ i * 2 }}{% endfor %} {{ ['a', 'b']|join(', ') }} {{ 'ab'|replace('a', 'x') }}\n",
    )
    assert check_source(catalogue.WELCOME, "de", source) == []
    rendered = render(catalogue.WELCOME, ["de"], sample_facts(catalogue.WELCOME), {(catalogue.WELCOME, "de"): source})
    assert rendered.subject == "1024 003.1 ok" and rendered.text == "024 a, b xb\n"


async def test_a_render_runs_off_the_event_loop_which_keeps_answering_meanwhile() -> None:
    overrides = {(catalogue.WELCOME, "de"): TemplateSource("Hallo", SILENT_LOOPS)}
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    ticker = asyncio.create_task(tick())
    attempt = asyncio.create_task(
        render_off_loop(catalogue.WELCOME, ["de"], sample_facts(catalogue.WELCOME), overrides, time_limit=1.0)
    )
    with pytest.raises(RenderFailed, match="took longer"):
        await attempt
    ticker.cancel()
    assert ticks > 1  # the loop ran other tasks while the template was rendered


def test_an_override_nested_too_deeply_to_parse_is_refused_not_a_crash() -> None:
    problems = check_source(
        catalogue.WELCOME, "de", TemplateSource("Hallo", "{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}")
    )
    assert [problem["field"] for problem in problems] == ["text"]
