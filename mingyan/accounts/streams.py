"""The generations running in this server process, as the account workflows reach them: /v1 streams
(through their cut-off watches) and stored-conversation replies (through the reply hub)."""

from __future__ import annotations

from mingyan.accounts.metering import Cutoffs
from mingyan.chat.conversations import ConversationService


class RunningGenerations:
    def __init__(self, cutoffs: Cutoffs, conversations: ConversationService | None) -> None:
        self.cutoffs = cutoffs
        self.conversations = conversations

    def cut(self, *, user_id: str | None = None, key_id: str | None = None) -> None:
        """End the user's (or the key's) /v1 streams, and the user's stored replies, now."""
        self.cutoffs.cut(user_id=user_id, key_id=key_id)
        if user_id is not None and self.conversations is not None:
            for reply in self.conversations.hub.for_owner(user_id):
                reply.stop("stopped")

    async def ended(self, user_id: str) -> None:
        if self.conversations is not None:
            for reply in self.conversations.hub.for_owner(user_id):
                await reply.wait()
