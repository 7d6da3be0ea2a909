"""Canonical chat templates (Jinja source) of the model families mingyan knows.

Constant data only: each template is the text its authors published, copied verbatim or
with the one adaptation noted beside it. `mingyan.formats.families` says which family uses
which template, with its stop tokens and source.
"""

# THUDM/chatglm3-6b, tokenizer_config.json "chat_template" (the same text is the ChatGLM3
# case of llama.cpp tests/test-chat-template.cpp). Verbatim.
CHATGLM3 = (
    "{% for message in messages %}{% if loop.first %}[gMASK]sop<|{{ message['role'] }}|>\n"
    " {{ message['content'] }}{% else %}<|{{ message['role'] }}|>\n {{ message['content'] }}"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
)

# mingyan's, for ChatGLM3 tool conversations: the template above with each turn's metadata
# after its role token, `<|role|>{metadata}\n ` + content, as THUDM/ChatGLM3
# tokenization_chatglm.py build_single_message writes a turn (`<|role|>` + `{metadata}\n` +
# content) and PROMPT.md shows a call (`<|assistant|>get_current_weather` + newline + code).
# With empty metadata it renders exactly what CHATGLM3 renders.
CHATGLM3_TOOLS = (
    "{% for message in messages %}{% if loop.first %}[gMASK]sop{% endif %}"
    "<|{{ message['role'] }}|>{{ message['metadata'] }}\n {{ message['content'] }}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)

# THUDM/glm-4-9b-chat, tokenizer_config.json "chat_template", as given in the ChatGLM4 case of
# llama.cpp tests/test-chat-template.cpp. Adapted: the `item['tools'] is defined` branch
# (tool-calling system prompt) is dropped; everything for system/user/assistant is kept,
# including the generation prompt "<|assistant|>\n" of that test case and of llama.cpp's
# C++ renderer (an earlier revision of the THUDM file ended with "<|assistant|>" alone).
GLM4 = (
    "[gMASK]<sop>{% for item in messages %}{% if item['content'] %}"
    "<|{{ item['role'] }}|>{{ item['metadata'] }}\n{{ item['content'] }}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

# vllm-project/vllm examples/template_baichuan.jinja. Verbatim. Baichuan's own repositories
# publish no Jinja template; this one reproduces build_chat_input() in
# baichuan-inc/Baichuan2-7B-Chat generation_utils.py: the system prompt first as plain text,
# then user_token_id 195 "<reserved_106>" + user text and assistant_token_id 196
# "<reserved_107>" + assistant text, and a final "<reserved_107>" to ask for a reply.
BAICHUAN2 = """\
{{ (messages|selectattr('role', 'equalto', 'system')|list|last).content|trim if (messages|selectattr('role', 'equalto', 'system')|list) else '' }}

{%- for message in messages -%}
    {%- if message['role'] == 'user' -%}
        {{- '<reserved_106>' + message['content'] -}}
    {%- elif message['role'] == 'assistant' -%}
        {{- '<reserved_107>' + message['content'] -}}
    {%- endif -%}
{%- endfor -%}

{%- if add_generation_prompt and messages[-1]['role'] != 'assistant' -%}
    {{- '<reserved_107>' -}}
{% endif %}"""

# baidu/ERNIE-4.5-0.3B-PT chat template, as DEFAULT_CHAT_TEMPLATE in huggingface/transformers
# src/transformers/models/ernie4_5/tokenization_ernie4_5.py (Baidu and Hugging Face). Verbatim.
ERNIE4_5 = (
    "{%- if not add_generation_prompt is defined -%}\n    {%- set add_generation_prompt = true -%}\n"
    "{%- endif -%}\n{%- if not cls_token is defined -%}\n"
    '    {%- set cls_token = "<|begin_of_sentence|>" -%}\n{%- endif -%}\n'
    '{%- if not sep_token is defined -%}\n    {%- set sep_token = "<|end_of_sentence|>" -%}\n'
    "{%- endif -%}\n{{- cls_token -}}\n{%- for message in messages -%}\n"
    '    {%- if message["role"] == "user" -%}\n        {{- "User: " + message["content"] + "\n" -}}\n'
    '    {%- elif message["role"] == "assistant" -%}\n'
    '        {{- "Assistant: " + message["content"] + sep_token -}}\n'
    '    {%- elif message["role"] == "system" -%}\n        {{- message["content"] + "\n" -}}\n'
    "    {%- endif -%}\n{%- endfor -%}\n{%- if add_generation_prompt -%}\n"
    '    {{- "Assistant: " -}}\n{%- endif -%}'
)

# Qwen/Qwen2.5-7B-Instruct, tokenizer_config.json "chat_template", as llama.cpp keeps it in
# models/templates/Qwen-Qwen2.5-7B-Instruct.jinja. Verbatim (tool branches included).
QWEN2 = r"""{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
"""

# meta-llama/Meta-Llama-3-8B-Instruct, tokenizer_config.json "chat_template". Verbatim.
# (llama.cpp's "Llama-3" test case is the same text without the add_generation_prompt test.)
LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    "+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
    "{% endif %}"
)
