"""What the app does when the content policy matches something: count it in /metrics
(`mingyan_moderation_flags_total{stage,category,action}`) and append an audit entry."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from prometheus_client import Counter

from mingyan.api.metrics import Metrics
from mingyan.safety.moderator import Verdict
from mingyan.safety.policy import Policy
from mingyan.store.accounts.account_store import AccountStore

log = logging.getLogger(__name__)


class SafetyRecorder:
    """The `SafetyObserver` of one app."""

    def __init__(self, metrics: Metrics, policy: Policy, accounts: AccountStore | None) -> None:
        self.policy = policy
        self.accounts = accounts
        self.flags = Counter(
            "mingyan_moderation_flags",
            "content-policy matches by stage (input, output, document, title, import, classifier, judge), "
            "category and action (log, block)",
            ["stage", "category", "action"],
            registry=metrics.registry,
        )

    def __call__(self, stage: str, verdict: Verdict, owner: str) -> None:
        matched = [c for c, hit in verdict.categories.items() if hit]
        for category in matched:
            self.flags.labels(stage, category, "block" if category in verdict.blocked else "log").inc()
        if self.accounts is None:
            return
        event = "content_refused" if verdict.blocked else "content_flagged"
        details: dict[str, Any] = {"stage": stage, "categories": matched, "blocked": list(verdict.blocked)}
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._audit(event, owner, details)
        else:
            loop.run_in_executor(None, self._audit, event, owner, details)

    def _audit(self, event: str, owner: str, details: dict[str, Any]) -> None:
        assert self.accounts is not None
        try:
            self.accounts.ledger.audit(event, actor="moderation", target=owner, **details)
        except Exception:  # noqa: BLE001 - the refusal stands even if its record fails
            log.exception("could not audit a content-policy match")
