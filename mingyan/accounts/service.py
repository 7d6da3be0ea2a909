"""AccountService: each account workflow written once — the store change, the cut-off of running
streams and the audit entry together. The HTTP routes and the `mingyan users` command both call it.

Methods are coroutines; the blocking store calls run in a worker thread. `streams` reaches the
replies running in this process (the server passes one; the command line has none: a server in
another process stops accepting a disabled user's or a revoked key's credentials at their next
request).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from mingyan.accounts.principal import LOCAL_OWNER, Principal
from mingyan.accounts.setup import SetupToken
from mingyan.accounts.throttle import LoginThrottle
from mingyan.errors import MingyanError
from mingyan.store.accounts.account_store import AccountStore
from mingyan.store.accounts.types import ApiKey, Quota, User
from mingyan.store.conversations import ConversationStore
from mingyan.store.errors import AuthFailed, Conflict


class LiveStreams(Protocol):
    """The generations running in this process, by user and key."""

    def cut(self, *, user_id: str | None = None, key_id: str | None = None) -> None:
        """End the user's (or the key's) running streams and replies now."""
        ...

    async def ended(self, user_id: str) -> None:
        """Wait until the user's stored replies have finished saving."""
        ...


@dataclass(frozen=True)
class Actor:
    """Who does something, for the audit log: a principal (recorded by id and name), or a name such
    as "cli"; and from which address."""

    who: Principal | User | str
    ip: str | None = None


@dataclass(frozen=True)
class QuotaView:
    overrides: Quota  # what is stored for the user (None: the server's default)
    effective: Quota  # what applies


class SetupRefused(MingyanError):
    """The setup token is wrong, or was used already."""


class AccountService:
    def __init__(
        self,
        store: AccountStore,
        defaults: Quota,
        streams: LiveStreams | None = None,
        *,
        throttle: LoginThrottle | None = None,
        setup_token: SetupToken | None = None,
        conversations: ConversationStore | None = None,
        forget: Callable[[str], object] | None = None,
    ) -> None:
        self.store = store
        self.defaults = defaults
        self.streams = streams
        self.throttle = throttle or LoginThrottle()
        self.setup_token = setup_token or SetupToken(None)
        self.conversations = conversations  # the local conversations a first administrator adopts
        self.forget = forget  # removes a deleted user's saved KV states (RAM and disk)

    # ---- signing in ------------------------------------------------------------------------------

    async def setup(self, token: str, username: str, password: str, *, ip: str | None) -> User:
        """First run: the first administrator, made with the token `serve` printed; they take over
        the conversations made before accounts existed. The token is consumed before anything awaits,
        and the database makes the first user only while there is none (another process may race)."""
        if not self.setup_token.take(token):
            raise SetupRefused("Invalid setup token: use the link `mingyan serve` printed at startup.")
        try:
            user = await asyncio.to_thread(self.store.users.create_user, username, password, role="admin", first=True)
        except Exception as exc:
            if not isinstance(exc, Conflict):
                self.setup_token.give_back()  # nothing was made (a bad name): the token still works
            raise
        adopted = 0
        if self.conversations is not None:
            adopted = await asyncio.to_thread(self.conversations.transfer_owner, LOCAL_OWNER, user.id)
        await self.audit(
            Actor(user, ip), "user_created", user.username, role="admin", setup=True, adopted_conversations=adopted
        )
        return user

    async def login(self, username: str, password: str, *, ip: str) -> User:
        """The user, or AuthFailed. Every attempt counts against the throttle before the password is
        checked (TooManyAttempts when used up); a success releases its own."""
        attempt = self.throttle.reserve(ip, username)
        user = await asyncio.to_thread(self.store.users.authenticate, username, password)
        if user is None:
            await self.audit(Actor("", ip), "login_failed", username[:64])
            raise AuthFailed("Wrong username or password, or the account is disabled.")
        self.throttle.succeeded(attempt)
        await self.audit(Actor(user, ip), "login", user.username)
        return user

    async def start_session(self, user: User, ttl_s: float, *, ip: str, user_agent: str | None) -> tuple[str, str]:
        """A login session: (session token, CSRF token)."""
        return await asyncio.to_thread(
            self.store.users.create_session, user.id, ttl_s=ttl_s, ip=ip, user_agent=user_agent
        )

    # ---- users (administrators) ------------------------------------------------------------------

    async def create_user(self, actor: Actor, username: str, password: str, *, role: str = "user") -> User:
        user = await asyncio.to_thread(self.store.users.create_user, username, password, role=role)
        await self.audit(actor, "user_created", user.username, role=user.role)
        return user

    async def set_role(self, actor: Actor, user_id: str, role: str) -> User:
        user = await asyncio.to_thread(self.store.users.set_role, user_id, role)
        await self.audit(actor, "role_changed", user.username, role=role)
        return user

    async def set_disabled(self, actor: Actor, user_id: str, disabled: bool) -> User:
        """Disabling signs the user out, stops their keys, and ends their running streams at once."""
        user = await asyncio.to_thread(self.store.users.set_disabled, user_id, disabled)
        if disabled and self.streams is not None:
            self.streams.cut(user_id=user_id)
        await self.audit(actor, "user_disabled" if disabled else "user_enabled", user.username)
        return user

    async def reset_password(self, actor: Actor, user_id: str, password: str) -> User:
        """An administrator sets the password; every login session of the user ends."""
        user = await asyncio.to_thread(self.store.users.get_user, user_id)
        await asyncio.to_thread(self.store.users.reset_password, user_id, password)
        await self.audit(actor, "password_changed", user.username, reset_by_admin=True)
        return user

    async def delete_user(self, actor: Actor, user_id: str) -> int:
        """Delete the user with their conversations, sessions, keys and saved KV states after their
        running replies have ended; returns how many conversations went."""
        user = await asyncio.to_thread(self.store.users.get_user, user_id)
        if self.streams is not None:
            self.streams.cut(user_id=user_id)
            await self.streams.ended(user_id)
        gone = await asyncio.to_thread(self.store.users.delete_user, user_id)
        if self.forget is not None:
            await asyncio.to_thread(self.forget, user_id)  # their saved KV states are their text too
        await self.audit(actor, "user_deleted", user.username, conversations=gone)
        return gone

    def quota(self, user_id: str) -> QuotaView:
        """Blocking: the user's stored limits and those in force."""
        self.store.users.get_user(user_id)
        ledger = self.store.ledger
        return QuotaView(ledger.get_quota_overrides(user_id), ledger.get_quota(user_id, self.defaults))

    async def set_quota(self, actor: Actor, user_id: str, **limits: int | None) -> Quota:
        user = await asyncio.to_thread(self.store.users.get_user, user_id)
        overrides = await asyncio.to_thread(self.store.ledger.set_quota, user_id, **limits)
        await self.audit(actor, "quota_changed", user.username, **limits)
        return overrides

    # ---- one's own account -----------------------------------------------------------------------

    async def change_password(self, actor: Actor, principal: Principal, current: str, new: str) -> None:
        """The user changes their own password; their other sign-ins end, this one stays.
        AuthFailed when `current` is wrong."""
        keep = principal.session.id if principal.session else None
        await asyncio.to_thread(self.store.users.set_password, principal.user_id, current, new, keep_session=keep)
        await self.audit(actor, "password_changed", principal.username)

    async def sign_out(self, actor: Actor, principal: Principal, token: str) -> None:
        await asyncio.to_thread(self.store.users.delete_session, token)
        await self.audit(actor, "logout", principal.username)

    async def create_key(self, actor: Actor, user_id: str, name: str, **limits: int | None) -> tuple[ApiKey, str]:
        """A new key and its value, which is shown this once."""
        key, plaintext = await asyncio.to_thread(self.store.keys.create_key, user_id, name, **limits)
        await self.audit(actor, "key_created", key.id, name=key.name)
        return key, plaintext

    async def revoke_key(self, actor: Actor, user_id: str, key_id: str) -> ApiKey:
        """Requests with the key fail from now on, and its running streams stop."""
        key = await asyncio.to_thread(self.store.keys.revoke_key, user_id, key_id)
        if self.streams is not None:
            self.streams.cut(key_id=key.id)
        await self.audit(actor, "key_revoked", key.id)
        return key

    async def set_key_limits(self, actor: Actor, user_id: str, key_id: str, **limits: int | None) -> ApiKey:
        key = await asyncio.to_thread(self.store.keys.set_key_limits, user_id, key_id, **limits)
        await self.audit(actor, "quota_changed", key.id, **limits)
        return key

    # ---- the audit log ---------------------------------------------------------------------------

    async def audit(self, actor: Actor, event: str, target: str = "", **details: Any) -> None:
        """Append `event`; a user is recorded by id and name (readable after the user is deleted)."""

        def write() -> None:
            who = actor.who
            if isinstance(who, Principal):
                recorded: User | str | None = self.store.users.get_user(who.user_id) if who.has_account else who.via
            else:
                recorded = who or None
            self.store.ledger.audit(event, actor=recorded, target=target, ip=actor.ip, **details)

        await asyncio.to_thread(write)
