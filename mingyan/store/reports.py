"""Reports of replies and conversations, and their review.

A report freezes the reported text when it is made (the reply with the message it answered, or the
conversation's current path), so later edits, hides or deletion change nothing an administrator
reads. Hiding replaces the reported reply's text (or every reply of a reported conversation) in
the reporter's history with a notice.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select, update

from mingyan.errors import InvalidRequestError
from mingyan.store.conversations import ConversationStore, path_in
from mingyan.store.db import rowcount
from mingyan.store.errors import NotFound
from mingyan.store.tables import REPORT_REASONS, REPORT_STATUSES, Conversation, Message, Report, utcnow

HIDDEN_NOTICE = "[This content was hidden by an administrator after a report. 此内容因举报已被管理员隐藏。]"
MAX_FROZEN_MESSAGES = 200
MAX_DETAILS_CHARS = 4000


def _frozen(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "role": message.role,
        "content": message.content,
        "status": message.status,
        "model_name": message.model_name,
        "created_at": message.created_at.isoformat() if message.created_at else None,
    }


def response_seconds(report: Report) -> float | None:
    """Seconds from the report to its resolution (None while unresolved)."""
    if report.resolved_at is None:
        return None
    return (_utc(report.resolved_at) - _utc(report.created_at)).total_seconds()


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)  # SQLite keeps no zone


class ReportStore:
    def __init__(self, conversations: ConversationStore, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.conversations = conversations
        self.db = conversations.db
        self.clock = clock

    def create(
        self, reporter: str, conversation_id: str, message_id: str | None, reason: str, details: str = ""
    ) -> Report:
        """A report by `reporter` of one of their own conversations (or one reply in it)."""
        if reason not in REPORT_REASONS:
            raise InvalidRequestError(f"reason must be one of {', '.join(REPORT_REASONS)}", param="reason")
        if len(details) > MAX_DETAILS_CHARS:
            raise InvalidRequestError(f"details are at most {MAX_DETAILS_CHARS} characters", param="details")
        tree = self.conversations.tree(reporter, conversation_id)  # NotFound for another owner's
        by_id = {m.id: m for m in tree.messages}
        if message_id is not None:
            message = by_id.get(message_id)
            if message is None:
                raise NotFound(f"No message {message_id} in conversation {conversation_id}.")
            reported = [by_id[message.parent_id], message] if message.parent_id in by_id else [message]
        else:
            reported = path_in(tree.messages, tree.conversation.current_leaf_id)[-MAX_FROZEN_MESSAGES:]
        now = self.clock()
        report = Report(
            reporter_id=reporter,
            conversation_id=conversation_id,
            message_id=message_id,
            reason=reason,
            details=details,
            content=[_frozen(m) for m in reported],
            status="open",
            hidden=False,
            created_at=now,
            updated_at=now,
        )
        with self.db.sessions.begin() as session:
            session.add(report)
        return report

    def get(self, report_id: str, *, reporter: str | None = None) -> Report:
        """One report (only the reporter's own when `reporter` is given)."""
        with self.db.reads() as session:
            report = session.get(Report, report_id)
        if report is None or (reporter is not None and report.reporter_id != reporter):
            raise NotFound(f"No report {report_id}.")
        return report

    def list(self, *, reporter: str | None = None, status: str | None = None, limit: int = 100) -> list[Report]:
        """Reports newest first: a reporter's own, or (for administrators) all, optionally by status."""
        query = select(Report).order_by(Report.created_at.desc(), Report.id).limit(limit)
        if reporter is not None:
            query = query.where(Report.reporter_id == reporter)
        if status is not None:
            query = query.where(Report.status == status)
        with self.db.reads() as session:
            return list(session.scalars(query))

    def review(self, report_id: str, reviewer: str, *, status: str | None = None, answer: str | None = None) -> Report:
        """Move a report along (open → in_review → resolved) and/or answer it."""
        if status is not None and status not in REPORT_STATUSES:
            raise InvalidRequestError(f"status must be one of {', '.join(REPORT_STATUSES)}", param="status")
        if answer is not None and len(answer) > MAX_DETAILS_CHARS:
            raise InvalidRequestError(f"an answer is at most {MAX_DETAILS_CHARS} characters", param="answer")
        with self.db.sessions.begin() as session:
            report = session.get(Report, report_id)
            if report is None:
                raise NotFound(f"No report {report_id}.")
            now = self.clock()
            if status is not None:
                report.status = status
                report.resolved_at = now if status == "resolved" else None
            if answer is not None:
                report.answer = answer
            report.reviewer_id, report.updated_at = reviewer, now
        return report

    def hide(self, report_id: str, reviewer: str) -> int:
        """Replace the reported reply (or every reply of the reported conversation) with a notice;
        returns how many messages changed (0 when the conversation is gone)."""
        with self.db.sessions.begin() as session:
            report = session.get(Report, report_id)
            if report is None:
                raise NotFound(f"No report {report_id}.")
            query = update(Message).where(
                Message.conversation_id == report.conversation_id,
                Message.conversation_id.in_(select(Conversation.id).where(Conversation.owner == report.reporter_id)),
            )
            if report.message_id is not None:
                query = query.where(Message.id == report.message_id)
            else:
                query = query.where(Message.role == "assistant")
            changed = rowcount(session.execute(query.values(content=HIDDEN_NOTICE, updated_at=self.clock())))
            report.hidden, report.reviewer_id, report.updated_at = True, reviewer, self.clock()
        return changed

    def delete_by_reporter(self, reporter: str) -> int:
        """Every report `reporter` made (their account is being deleted); returns how many went."""
        with self.db.sessions.begin() as session:
            return rowcount(session.execute(delete(Report).where(Report.reporter_id == reporter)))
