"""The application context: every running piece the routes use, typed, in one place on `app.state`.

`create_app()` builds it; routes reach it through the `Ctx` dependency (or `context(request)` in
helpers that already hold the request).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from mingyan.accounts.metering import Cutoffs, Meter
from mingyan.accounts.service import AccountService
from mingyan.accounts.throttle import LoginThrottle
from mingyan.api.drain import Drain
from mingyan.api.metrics import Metrics
from mingyan.chat.conversations import ConversationService
from mingyan.chat.service import ChatService
from mingyan.config import Settings
from mingyan.store.accounts.account_store import AccountStore
from mingyan.store.conversations import ConversationStore


@dataclass
class AppContext:
    settings: Settings
    chat: ChatService
    metrics: Metrics
    meter: Meter
    cutoffs: Cutoffs
    login_throttle: LoginThrottle
    started: int  # when the app was built (Unix seconds)
    api_key_hash: bytes | None  # the server's own --api-key, hashed
    store: ConversationStore | None = None  # None: a bare /v1 server without history
    accounts: AccountStore | None = None
    account_service: AccountService | None = None
    conversations: ConversationService | None = None
    setup_hash: bytes | None = None  # the first-run setup token, hashed, until setup is done
    drain: Drain | None = None  # set by create_app: refusing new requests before shutdown


def context(request: Request) -> AppContext:
    return request.app.state.context


Ctx = Annotated[AppContext, Depends(context)]
