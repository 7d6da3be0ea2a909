"""Chat templates render GGUF Jinja in a sandbox: hostile templates fail safely."""

import time

import pytest

from mingyan.engine.fake import CHATML
from mingyan.errors import TemplateError
from mingyan.formats.template import ChatTemplate

MESSAGES = [
    {"role": "system", "content": "你是一个乐于助人的助手。"},
    {"role": "user", "content": "你好！"},
]


def test_chatml_renders_with_generation_prompt():
    text = ChatTemplate(CHATML).render(MESSAGES)
    assert text == (
        "<|im_start|>system\n你是一个乐于助人的助手。<|im_end|>\n"
        "<|im_start|>user\n你好！<|im_end|>\n<|im_start|>assistant\n"
    )
    assert not ChatTemplate(CHATML).render(MESSAGES, add_generation_prompt=False).endswith("assistant\n")


def test_template_helpers_are_available():
    source = (
        "{{ bos_token }}{{ messages | tojson }}{% for m in messages %}{% if loop.index > 1 %}"
        "{% break %}{% endif %}{{ m.role }}{% endfor %}{{ strftime_now('%Y') | length }}"
    )
    text = ChatTemplate(source, bos_token="<s>").render(MESSAGES)
    assert text.startswith('<s>[{"role": "system", "content": "你是一个乐于助人的助手。"}')  # no \\u escapes
    assert text.endswith("system4")


def test_raise_exception_becomes_template_error():
    source = (
        "{% if messages[0]['role'] != 'user' %}{{ raise_exception('Conversation roles must alternate') }}{% endif %}"
    )
    with pytest.raises(TemplateError, match="roles must alternate"):
        ChatTemplate(source).render(MESSAGES)


HOSTILE = [
    # the CVE-2024-34359 payload shape: reach os through Python internals
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{% for c in ().__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{{ self._TemplateReference__context.cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ messages.__class__.__init__.__globals__ }}",
    "{{ raise_exception.__globals__['__builtins__']['__import__']('os').system('touch /tmp/pwned') }}",
    "{% set x = messages.append({'role': 'x'}) %}",
    "{{ messages.pop() }}",
    "{{ cycler.__init__.__globals__.os }}",
]


@pytest.mark.parametrize("source", HOSTILE)
def test_hostile_templates_fail_safely(source, tmp_path):
    with pytest.raises(TemplateError):
        ChatTemplate(source).render(MESSAGES)


def test_hostile_template_leaves_input_untouched():
    messages = [dict(m) for m in MESSAGES]
    with pytest.raises(TemplateError):
        ChatTemplate("{% set _ = messages[0].update({'content': 'x'}) %}").render(messages)
    assert messages == MESSAGES


def test_broken_template_is_refused_at_load():
    with pytest.raises(TemplateError, match="does not compile"):
        ChatTemplate("{% for %}")


def test_huge_output_is_refused():
    with pytest.raises(TemplateError):
        ChatTemplate("{% for i in range(99999) %}{{ 'x' * 1000 }}{% endfor %}").render(MESSAGES)


RESOURCE_HOGS = {
    "nested ranges": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "constant repetition": "{{ 'a' * 10**9 }}",
    "content repetition": "{{ messages[0].content * 10**9 }}",
    "power": "{{ 10 ** 100000000 }}",
    "doubling by ~": "{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
    "doubling by +": "{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
    "center": "{{ 'x' | center(10**9) }}",
    "method width": "{{ 'x'.rjust(10**9) }}",
    "replace": "{% set s = 'a' * 4000 %}{{ s.replace('a', s) }}",
    "replace filter": "{% set s = 'a' * 4000 %}{{ s | replace('a', s) }}",
    "join": "{% set s = 'a' * 4000 %}{{ s.join([s] * 4000) }}",
    "format width": "{{ '%1000000000s' % 'x' }}",
    "recursive macro": "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
    "huge range": "{{ range(10**9) | length }}",
}


@pytest.mark.parametrize("source", RESOURCE_HOGS.values(), ids=RESOURCE_HOGS.keys())
def test_templates_that_hog_cpu_or_memory_are_refused_at_load(source):
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.monotonic()
    with pytest.raises(TemplateError, match="refused at load"):
        ChatTemplate(source)
    assert time.monotonic() - start < 5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 300_000  # KiB: nothing near 1 GB


def test_a_template_hogging_only_on_some_input_fails_that_render_in_time():
    source = (
        "{% if messages | length > 5 %}{% for i in range(100000) %}{% for j in range(100000) %}"
        "{% endfor %}{% endfor %}{% endif %}{% for m in messages %}{{ m.content }}{% endfor %}"
    )
    template = ChatTemplate(source)  # the load check's sample is short
    assert template.render(MESSAGES) == "你是一个乐于助人的助手。你好！"
    start = time.monotonic()
    with pytest.raises(TemplateError, match="time budget"):
        template.render(MESSAGES * 3)
    assert time.monotonic() - start < 5
    assert template.render(MESSAGES) == "你是一个乐于助人的助手。你好！"  # the thread is fine afterwards


def test_a_recursive_macro_at_render_is_a_template_error():
    source = "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{% if messages | length > 5 %}{{ f(0) }}{% endif %}ok"
    template = ChatTemplate(source)
    with pytest.raises(TemplateError, match="RecursionError"):
        template.render(MESSAGES * 3)


def test_lipsum_is_gone():
    with pytest.raises(TemplateError):
        ChatTemplate("{{ lipsum(1000000) }}").render(MESSAGES)
