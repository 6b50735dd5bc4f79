"""The sandbox measures what a template builds, not only what it writes: a value that is small to
build but huge as text (references to references, doubling in a loop, captured output, a filter's
fill) is refused where it is built, before one C call turns it into gigabytes while holding the GIL
(which the render's time limit cannot interrupt, and which stops the service from answering)."""

from __future__ import annotations

import time

import pytest
from jinja2.exceptions import SecurityError

from lotse_notifications.sandbox import BoundedSandbox, render_within


def rendered(source: str) -> str:
    template = BoundedSandbox(keep_trailing_newline=True).from_string(source)
    # The size bound is under test, not the time limit: a deadline no loaded machine reaches.
    return render_within(template, {"name": "Ada"}, time.monotonic() + 300)


# Each writes only a number: the old checks (output size, `*` on one level) let all of them through,
# after building a value of a million characters or more (several gigabytes with larger numbers).
HOSTILE = [
    # a hundred references to a hundred references to a string: 1 MB as text, 300 references built
    "{% set a = [['x' * 100] * 100] * 100 %}{{ (a|string)|length }}",
    "{% set a = ['x' * 1000] * 100 %}{% set b = [a, a, a] %}{{ (b ~ '')|length }}",
    "{% set a = ['x' * 1000] * 100 %}{{ (dict(a=a, b=a, c=a)|string)|length }}",
    "{% set a = 'x' * 100000 %}{{ (namespace(a=a, b=a, c=a)|string)|length }}",
    # doubling in a loop, with ~ and with +
    "{% set ns = namespace(x='ab') %}{% for i in range(20) %}{% set ns.x = ns.x ~ ns.x %}{% endfor %}{{ ns.x|length }}",
    "{% set ns = namespace(x=[1]) %}{% for i in range(20) %}{% set ns.x = ns.x + ns.x %}{% endfor %}{{ ns.x|length }}",
    "{% macro m(s, n) %}{% if n %}{{ m(s ~ s, n - 1) }}{% else %}{{ s|length }}{% endif %}{% endmacro %}"
    "{{ m('ab', 20) }}",
    # captured output: each piece is small, a loop adds a thousand of them
    "{% set x %}{% for i in range(1000) %}{{ 'y' * 1000 }}{% endfor %}{% endset %}{{ x|length }}",
    # filters that allocate by an argument, or copy quadratically
    "{{ [1]|batch(1000000, 0)|list|length }}",
    "{{ range(10)|slice(100000)|list|length }}",
    "{{ ([1]|tojson(indent=1000000))|length }}",
    "{{ ([[1]] * 1000)|sum(start=[])|length }}",
    # a format width behind a mapping key
    "{{ ('%(a)9999s' % {'a': 1})|length }}",
    "{{ ('%(a)9999s'|format(a=1))|length }}",
]


@pytest.mark.parametrize("source", HOSTILE)
def test_a_value_too_large_as_text_is_refused_where_it_is_built(source: str) -> None:
    with pytest.raises(SecurityError):
        rendered(source)


def test_templates_of_ordinary_size_still_build_and_write_their_values() -> None:
    source = (
        "Hallo {{ name }}! {% for a, b in [(1, 2), (3, 4)] %}{{ a ~ b }} {% endfor %}"
        "{{ [1, 2, 3]|batch(2, 0)|list }} {{ range(6)|slice(2)|list }} {{ {'k': [1]}|tojson(indent=2) }} "
        "{{ [1, 2]|sum }} {{ '%(n)5s' % {'n': 'x'} }} {{ ['a'] + ['b'] }} "
        "{% set ns = namespace(text='') %}{% for i in range(3) %}{% set ns.text = ns.text ~ i %}{% endfor %}"
        "{{ ns.text }} "
        "{% macro greet(who) %}Hi {{ who }}{% endmacro %}{{ greet(name) }} "
        "{% set block %}{% for i in range(3) %}{{ i }}{% endfor %}{% endset %}{{ block }}"
    )
    assert rendered(source) == (
        'Hallo Ada! 12 34 [[1, 2], [3, 0]] [[0, 1, 2], [3, 4, 5]] {\n  "k": [\n    1\n  ]\n} '
        "3     x ['a', 'b'] 012 Hi Ada 012"
    )
