"""The application context: every running piece the routes use, typed, in one place on `app.state`.

`create_app()` builds it; routes reach it through the `Ctx` dependency (or `context(request)` in
helpers that already hold the request).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

if TYPE_CHECKING:  # annotations only: this module is imported by auth, errors and the routes alike
    from mingyan.accounts.metering import Cutoffs, Meter
    from mingyan.accounts.service import AccountService
    from mingyan.api.drain import Drain
    from mingyan.api.metrics import Metrics
    from mingyan.chat.conversations import ConversationService
    from mingyan.chat.service import ChatService
    from mingyan.chat.tool_loop import ToolKit
    from mingyan.config import Settings
    from mingyan.documents.service import DocumentService
    from mingyan.engine.base import Embedder
    from mingyan.safety.bank_sync import BankSync
    from mingyan.serving.router import ModelRouter
    from mingyan.store.accounts.account_store import AccountStore
    from mingyan.store.conversations import ConversationStore


@dataclass
class AppContext:
    settings: Settings
    chat: ChatService
    metrics: Metrics
    meter: Meter
    cutoffs: Cutoffs
    started: int  # when the app was built (Unix seconds)
    api_key_hash: bytes | None  # the server's own --api-key, hashed
    store: ConversationStore | None = None  # None: a bare /v1 server without history
    accounts: AccountStore | None = None
    account_service: AccountService | None = None
    conversations: ConversationService | None = None
    embedder: Embedder | None = None  # /v1/embeddings; None: not served
    drain: Drain | None = None  # set by create_app: refusing new requests before shutdown
    tools: ToolKit | None = None  # MCP tool servers and approvals (with a database)
    documents: DocumentService | None = None  # /api/files (with a database)
    models: ModelRouter | None = None  # several models (chat.engine is then the router: its first model)
    banks: BankSync | None = None  # the keyword banks stored in the database (with one)

    # The routes of stored conversations and accounts are mounted only with a database.
    def history(self) -> ConversationStore:
        assert self.store is not None, "a route of the history API ran without a database"
        return self.store

    def conversation_service(self) -> ConversationService:
        assert self.conversations is not None, "a route of the history API ran without a database"
        return self.conversations

    def tool_kit(self) -> ToolKit:
        assert self.tools is not None, "a tool route ran without a database"
        return self.tools

    def document_service(self) -> DocumentService:
        assert self.documents is not None, "a files route ran without a database"
        return self.documents

    def account_store(self) -> AccountStore:
        assert self.accounts is not None, "an accounts route ran without a database"
        return self.accounts

    def accounts_service(self) -> AccountService:
        assert self.account_service is not None, "an accounts route ran without a database"
        return self.account_service


def context(request: Request) -> AppContext:
    return request.app.state.context


Ctx = Annotated[AppContext, Depends(context)]
