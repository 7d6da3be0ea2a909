"""Who is asking: the account (or the operator's local identity) a request acts for."""

from __future__ import annotations

from dataclasses import dataclass

from mingyan.store.accounts.types import ApiKey, LoginSession

LOCAL_OWNER = "local"  # the operator's identity: no accounts yet, or the server's own API key


@dataclass(frozen=True)
class Principal:
    """The caller. `user_id` owns what they create; `via` says how they proved it."""

    user_id: str
    username: str
    role: str
    via: str  # "open" (no accounts yet), "server_key", "api_key" or "session"
    key: ApiKey | None = None
    session: LoginSession | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def has_account(self) -> bool:
        """A real user (quotas and usage apply), not the operator's local identity."""
        return self.via in ("api_key", "session")
