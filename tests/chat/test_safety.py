"""Untrusted templates: sandbox escapes refused, runaway renders stopped."""

from __future__ import annotations

import time

import pytest

import pyggml
from pyggml.chat import TemplateError, render

SSTI = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ''.__class__ }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ lipsum.__globals__['os'] }}",
    "{{ x|attr('format') }}",
    "{{ x|attr('__class__') }}",
    "{{ '{0.__class__}'.format(x) }}",
    "{{ '{0:>{1}}'.format(x, 5) }}",
    "{{ x['__class__'] }}",
    "{{ x.__str__() }}",
    "{{ namespace.__init__ }}",
    "{{ raise_exception.__globals__ }}",
    "{% set f = x.upper %}{{ f.__self__ }}",
]


@pytest.mark.parametrize("payload", SSTI)
def test_ssti_payloads_are_refused(payload):
    with pytest.raises(TemplateError):
        render(payload, {"x": "abc"})


def test_template_error_is_public():
    assert issubclass(TemplateError, pyggml.errors.PyggmlError)


RUNAWAY = [
    "{% for a in range(100000) %}{% for b in range(100000) %}{{ b }}{% endfor %}{% endfor %}",
    "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
    "{{ 'a'*10**9 }}",
    "{{ 'a'*1000000000 }}",
    "{{ 9**9**9 }}",
    "{{ range(10000000000)|length }}",
    "{% set ns = namespace(s='a') %}{% for i in range(100) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
    "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
]


@pytest.mark.parametrize("payload", RUNAWAY)
def test_runaway_renders_stop_within_about_a_second(payload):
    # the budget is CPU time (1 s), so is the check: the machine's load changes neither
    t0 = time.thread_time()
    with pytest.raises(TemplateError):
        render(payload, {})
    assert time.thread_time() - t0 < 2.0


def test_input_is_never_code():
    # a user message that looks like Jinja is printed, not executed
    tmpl = "{% for m in messages %}{{ m.content }}{% endfor %}"
    out = render(tmpl, {"messages": [{"role": "user", "content": "{{ 7*7 }}{% raise %}"}]})
    assert out.text == "{{ 7*7 }}{% raise %}"
    assert out.mask() == [("{{ 7*7 }}{% raise %}", True)]
