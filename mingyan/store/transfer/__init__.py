"""Export and import of conversations, lossless and all-or-nothing.

- `mingyan_json`  mingyan's own JSON format (every branch and column), and `import_file`, which
                  recognises the format of an uploaded file
- `chatgpt`       ChatGPT's `conversations.json`
- `markdown`      a readable Markdown export of one conversation
- `checks`        validation of a whole file before anything is written
- `read`, `write` owner-checked reads for export; one-transaction writes for import (ids kept when free)
"""
