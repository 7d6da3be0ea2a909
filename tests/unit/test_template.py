"""Chat templates render GGUF Jinja in a sandbox: hostile templates fail safely."""

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
