"""The conversation service: messages → prompt tokens → engine requests, and what the server keeps.

- `service`        ChatService: prompts from messages (the model's template), requests, collecting replies
- `prompt`         messages → tokens without letting message text act as control tokens
- `context`        what of a stored conversation fits the context window (oldest turns dropped first)
- `conversations`  ConversationService: send, edit, regenerate, stop, over the store and live replies
- `live`           LiveReply and ReplyHub: durable, re-attachable replies saved as they stream
- `titles`         a short title after the first exchange
"""
