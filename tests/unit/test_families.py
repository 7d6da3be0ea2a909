"""Family registry: canonical templates render exactly what the model authors' formats say.

References are written out by hand below. Where llama.cpp's tests/test-chat-template.cpp
(vendored in the llama-cpp-python 0.3.36 sdist) has a case for a family, its fixed
conversation and expected_output are also copied verbatim, as an independent check.
"""

import pytest

from mingyan.formats.families import (
    Family,
    detect_family,
    families,
    family_by_name,
    template_fingerprint,
)
from mingyan.formats.template import ChatTemplate

CONVERSATION = [
    {"role": "system", "content": "你是一个乐于助人的助手。"},
    {"role": "user", "content": "你好"},
    {"role": "assistant", "content": "你好！有什么可以帮你？"},
    {"role": "user", "content": "介绍一下北京。"},
]

BOS = {"llama3": "<|begin_of_text|>"}  # the only family whose template emits bos_token

EXPECTED = {
    # llama.cpp test-chat-template.cpp "ChatGLM3" expected_output, same rules: [gMASK]sop once,
    # then "<|role|>\n " + content per message, "<|assistant|>" to ask for a reply.
    "chatglm3": "[gMASK]sop<|system|>\n 你是一个乐于助人的助手。<|user|>\n 你好"
    "<|assistant|>\n 你好！有什么可以帮你？<|user|>\n 介绍一下北京。<|assistant|>",
    # llama.cpp "ChatGLM4" expected_output, same rules: [gMASK]<sop>, "<|role|>\n" + content,
    # "<|assistant|>\n" to ask for a reply (also llama.cpp's C++ chatglm4 renderer).
    "glm4": "[gMASK]<sop><|system|>\n你是一个乐于助人的助手。<|user|>\n你好"
    "<|assistant|>\n你好！有什么可以帮你？<|user|>\n介绍一下北京。<|assistant|>\n",
    # Baichuan2-7B-Chat generation_utils.py build_chat_input(): system text, then 195
    # <reserved_106> + user / 196 <reserved_107> + assistant, then 196 for the reply.
    "baichuan2": "你是一个乐于助人的助手。<reserved_106>你好<reserved_107>你好！有什么可以帮你？"
    "<reserved_106>介绍一下北京。<reserved_107>",
    # ERNIE 4.5 template (transformers tokenization_ernie4_5.py): cls, system + "\n",
    # "User: " + text + "\n", "Assistant: " + text + sep, and "Assistant: " for the reply.
    "ernie4_5": "<|begin_of_sentence|>你是一个乐于助人的助手。\nUser: 你好\n"
    "Assistant: 你好！有什么可以帮你？<|end_of_sentence|>User: 介绍一下北京。\nAssistant: ",
    # Qwen2.5 ChatML as in the Qwen2.5 README / chat_template: the given system prompt
    # replaces the default one; "<|im_start|>role\n" + content + "<|im_end|>\n".
    "qwen2": "<|im_start|>system\n你是一个乐于助人的助手。<|im_end|>\n<|im_start|>user\n你好<|im_end|>\n"
    "<|im_start|>assistant\n你好！有什么可以帮你？<|im_end|>\n<|im_start|>user\n介绍一下北京。<|im_end|>\n"
    "<|im_start|>assistant\n",
    # llama.cpp "Llama-3" expected_output, same rules, with bos_token <|begin_of_text|> first.
    "llama3": "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n你是一个乐于助人的助手。"
    "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n你好<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n你好！有什么可以帮你？<|eot_id|>"
    "<|start_header_id|>user<|end_header_id|>\n\n介绍一下北京。<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n",
}

# llama.cpp tests/test-chat-template.cpp: the conversation of main_automated_tests() ...
LLAMA_CPP_CONVERSATION = [
    {"role": "system", "content": "You are a helpful assistant"},
    {"role": "user", "content": "Hello"},
    {"role": "assistant", "content": "Hi there"},
    {"role": "user", "content": "Who are you"},
    {"role": "assistant", "content": "   I am an assistant   "},
    {"role": "user", "content": "Another question"},
]

# ... and the expected_output of its ChatGLM3, ChatGLM4 and Llama-3 cases, verbatim
# (bos_token and eos_token are "" there).
LLAMA_CPP_EXPECTED = {
    "chatglm3": "[gMASK]sop<|system|>\n You are a helpful assistant<|user|>\n Hello<|assistant|>\n Hi there"
    "<|user|>\n Who are you<|assistant|>\n    I am an assistant   <|user|>\n Another question<|assistant|>",
    "glm4": "[gMASK]<sop><|system|>\nYou are a helpful assistant<|user|>\nHello<|assistant|>\nHi there"
    "<|user|>\nWho are you<|assistant|>\n   I am an assistant   <|user|>\nAnother question<|assistant|>\n",
    "llama3": "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant<|eot_id|>"
    "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\nHi there<|eot_id|>"
    "<|start_header_id|>user<|end_header_id|>\n\nWho are you<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\nI am an assistant<|eot_id|>"
    "<|start_header_id|>user<|end_header_id|>\n\nAnother question<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n",
}


def _render(family: Family, messages, *, add_generation_prompt: bool = True, bos: str = "") -> str:
    template = ChatTemplate(family.template, bos_token=bos, eos_token="")
    return template.render(messages, add_generation_prompt=add_generation_prompt)


def test_registry_holds_the_six_families():
    assert [f.name for f in families()] == list(EXPECTED)
    for family in families():
        assert family_by_name(family.name) is family
        assert family.architectures and family.stop_tokens and family.source


def test_unknown_family_name_is_a_value_error():
    with pytest.raises(ValueError, match="unknown model family"):
        family_by_name("gpt-5")


@pytest.mark.parametrize("name", list(EXPECTED))
def test_canonical_template_renders_the_reference_prompt(name):
    family = family_by_name(name)
    assert _render(family, CONVERSATION, bos=BOS.get(name, "")) == EXPECTED[name]


@pytest.mark.parametrize("name", list(LLAMA_CPP_EXPECTED))
def test_template_matches_llama_cpp_expected_output(name):
    assert _render(family_by_name(name), LLAMA_CPP_CONVERSATION) == LLAMA_CPP_EXPECTED[name]


def test_qwen2_falls_back_on_its_default_system_prompt():
    text = _render(family_by_name("qwen2"), CONVERSATION[1:2])
    assert text == (
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant."
        "<|im_end|>\n<|im_start|>user\n你好<|im_end|>\n<|im_start|>assistant\n"
    )


@pytest.mark.parametrize("name", list(EXPECTED))
def test_without_generation_prompt_no_reply_is_opened(name):
    family = family_by_name(name)
    bos = BOS.get(name, "")
    with_prompt = _render(family, CONVERSATION, bos=bos)
    without = _render(family, CONVERSATION, add_generation_prompt=False, bos=bos)
    assert with_prompt.startswith(without) and len(with_prompt) > len(without)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_a_stop_token_follows_every_assistant_turn(name):
    family = family_by_name(name)
    text = _render(family, CONVERSATION, add_generation_prompt=False, bos=BOS.get(name, ""))
    after_reply = text.split("你好！有什么可以帮你？", 1)[1]
    assert any(after_reply.startswith(stop) for stop in family.stop_tokens), after_reply


@pytest.mark.parametrize(
    ("architecture", "name"),
    [
        ("qwen2", "qwen2"),
        ("baichuan", "baichuan2"),
        ("ernie4_5", "ernie4_5"),
        ("ernie4_5-moe", "ernie4_5"),
        ("glm4", "glm4"),
        ("QWEN2", "qwen2"),
    ],
)
def test_an_unambiguous_architecture_decides(architecture, name):
    assert detect_family(architecture, None, None) is family_by_name(name)
    assert detect_family(architecture, "whatever", "{{ messages }}") is family_by_name(name)


@pytest.mark.parametrize(
    ("model_name", "template", "expected"),
    [
        ("glm-4-9b-chat", None, "glm4"),
        ("Glm 4 9b Chat", None, "glm4"),
        ("chatglm3-6b", None, "chatglm3"),
        ("ChatGLM3 6B", None, "chatglm3"),
        (None, "[gMASK]<sop>{% for item in messages %}", "glm4"),
        (None, "{% if loop.first %}[gMASK]sop<|{{ message['role'] }}|>", "chatglm3"),
        ("chatglm3-6b", "[gMASK]<sop>{{ messages }}", "glm4"),  # the template wins
        ("chatglm2-6b", None, None),
        (None, None, None),
    ],
)
def test_chatglm_architecture_is_told_apart(model_name, template, expected):
    found = detect_family("chatglm", model_name, template)
    assert found is (family_by_name(expected) if expected else None)


def test_llama_architecture_is_llama3_only_on_evidence():
    llama3 = family_by_name("llama3")
    assert detect_family("llama", "Meta Llama 3 8B Instruct", None) is llama3
    assert detect_family("llama", "Llama-3.2-1B-Instruct", None) is llama3
    assert detect_family("llama", None, llama3.template) is llama3
    assert detect_family("llama", "Smollm2 135M 8k Lc100K Mix1 Ep2", None) is None
    assert detect_family("llama", "Llama 30B", None) is None
    assert detect_family("llama", None, None) is None
    chatml = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>{% endfor %}"
    assert detect_family("llama", "Hermes 3 Llama 3.1 8B", chatml) is None


@pytest.mark.parametrize("architecture", ["gpt2", "", None, "mamba"])
def test_unknown_architecture_is_none(architecture):
    assert detect_family(architecture, "Qwen2.5 0.5B", "<|im_start|>") is None


def test_fingerprint_ignores_whitespace_but_not_content():
    compact = "{% for m in messages %}{{ m.content }}{% endfor %}"
    spread = "\n{% for m in messages %}\n    {{ m.content }}\n{% endfor %}\n"
    trimmed = "{%- for m in messages -%}\n  {{- m.content -}}\n{%- endfor %}"
    assert template_fingerprint(compact) == template_fingerprint(spread)
    assert template_fingerprint(compact) == template_fingerprint(trimmed)
    assert template_fingerprint(compact) != template_fingerprint(compact.replace("content", "role"))
    assert len(template_fingerprint(compact)) == 16
    fingerprints = {template_fingerprint(f.template) for f in families()}
    assert len(fingerprints) == len(families())
