"""The conversation service: messages → prompt tokens → engine requests, and what the server keeps.

- `service`         ChatService: prompts from messages (the model's template, shaped by a reply plan), requests
- `prompt`          messages → tokens without letting message text act as control tokens
- `prompt_workers`  the bounded pool prompts are prepared in, one place per user
- `tool_calling`    the reply plan (tool format, constraint), the final parse, streamed call deltas
- `context`         what of a stored conversation fits the context window (oldest turns dropped first)
- `conversations`   ConversationService: send, edit, regenerate, stop, over the store and live replies
- `live`            LiveReply and ReplyHub: durable, re-attachable replies saved as they stream
- `titles`          a short title after the first exchange
"""
