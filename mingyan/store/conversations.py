"""Every read and write of conversations and messages goes through `ConversationStore`.

Each method is one short transaction. Every method that takes an object id also takes `owner`, and another
owner's object raises `NotFound`, exactly as a missing one does. Returned objects are detached snapshots.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select, true, update
from sqlalchemy.orm import Session

from mingyan.store.db import Database, rowcount
from mingyan.store.errors import NotFound
from mingyan.store.tables import ROLES, STATUSES, Conversation, Message, utcnow

FINAL_STATUSES = tuple(s for s in STATUSES if s != "streaming")
PROVENANCE_FIELDS = frozenset(
    {
        "model_name",
        "model_sha256",
        "moderation",
        "ai_label",
        "sampling",
        "seed",
        "prompt_tokens",
        "completion_tokens",
        "cached_tokens",
        "ttft_ms",
        "duration_ms",
        "omitted_turns",
        "error",
        "tool",
    }
)
UPDATABLE_FIELDS = frozenset({"title", "pinned", "archived", "system_prompt", "settings", "model"})


@dataclass(frozen=True)
class Tree:
    conversation: Conversation
    messages: list[Message]
    current_path: list[str]  # ids, root first


class ConversationStore:
    """Conversations and their message trees, for one database."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.engine = db.engine
        self.sessions = db.sessions  # writes: `with sessions.begin()`
        self.reads = db.reads

    # ---- conversations -------------------------------------------------------------------------

    def create_conversation(
        self,
        owner: str,
        *,
        title: str = "",
        model: str = "",
        system_prompt: str | None = None,
        settings: dict[str, Any] | None = None,
    ) -> Conversation:
        conversation = Conversation(
            owner=owner,
            title=title,
            model=model,
            system_prompt=system_prompt,
            settings=dict(settings or {}),
            pinned=False,
            archived=False,
        )
        with self.sessions.begin() as session:
            session.add(conversation)
        return conversation

    def list_conversations(
        self,
        owner: str,
        *,
        include_archived: bool = False,
        archived_only: bool = False,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Conversation]:
        """Pinned first, then most recently updated first."""
        query = select(Conversation).where(Conversation.owner == owner)
        if archived_only:
            query = query.where(Conversation.archived.is_(True))
        elif not include_archived:
            query = query.where(Conversation.archived.is_(False))
        query = (
            query.order_by(Conversation.pinned.desc(), Conversation.updated_at.desc(), Conversation.id)
            .limit(limit)
            .offset(offset)
        )
        with self.reads() as session:
            return list(session.scalars(query))

    def get_conversation(self, owner: str, conversation_id: str) -> Conversation:
        with self.reads() as session:
            return _conversation(session, owner, conversation_id)

    def update_conversation(self, owner: str, conversation_id: str, **values: Any) -> Conversation:
        """Change any of title, pinned, archived, system_prompt, settings."""
        unknown = set(values) - UPDATABLE_FIELDS
        if unknown:
            raise TypeError(f"cannot update: {', '.join(sorted(unknown))}")
        return self._update_conversation(owner, conversation_id, **values)

    def rename(self, owner: str, conversation_id: str, title: str) -> Conversation:
        return self._update_conversation(owner, conversation_id, title=title)

    def set_title_if_untitled(self, owner: str, conversation_id: str, title: str) -> bool:
        """Set a generated title unless the conversation has one (the user's own name always wins)."""
        with self.sessions.begin() as session:
            result = session.execute(
                update(Conversation)
                .where(Conversation.id == conversation_id, Conversation.owner == owner, Conversation.title == "")
                .values(title=title[:200])
            )
            return bool(rowcount(result))

    def set_pinned(self, owner: str, conversation_id: str, pinned: bool) -> Conversation:
        return self._update_conversation(owner, conversation_id, pinned=pinned)

    def set_archived(self, owner: str, conversation_id: str, archived: bool) -> Conversation:
        return self._update_conversation(owner, conversation_id, archived=archived)

    def delete_conversation(self, owner: str, conversation_id: str) -> None:
        """Deletes the conversation and all its messages.

        Parent links are cut first: a cascade down a long chain of replies would recurse once per
        message (SQLite stops at 1,000 levels)."""
        with self.sessions.begin() as session:
            conversation = _conversation(session, owner, conversation_id)
            conversation.current_leaf_id = None
            session.flush()
            session.execute(update(Message).where(Message.conversation_id == conversation.id).values(parent_id=None))
            session.execute(delete(Message).where(Message.conversation_id == conversation.id))
            session.delete(conversation)

    def transfer_owner(self, old_owner: str, new_owner: str) -> int:
        """Give every conversation of `old_owner` to `new_owner` (first-run setup adopts `local`'s)."""
        with self.sessions.begin() as session:
            result = session.execute(
                update(Conversation).where(Conversation.owner == old_owner).values(owner=new_owner)
            )
            return rowcount(result)

    def _update_conversation(self, owner: str, conversation_id: str, **values: Any) -> Conversation:
        with self.sessions.begin() as session:
            conversation = _conversation(session, owner, conversation_id)
            for name, value in values.items():
                setattr(conversation, name, value)
            conversation.updated_at = utcnow()
        return conversation

    # ---- messages ------------------------------------------------------------------------------

    def add_message(
        self,
        owner: str,
        conversation_id: str,
        role: str,
        content: str,
        parent_id: str | None = None,
        *,
        at_root: bool = False,
        status: str = "complete",
        **provenance: Any,
    ) -> Message:
        """Append a message under `parent_id` (default: the current leaf; `at_root=True`: no parent).

        A parent that already has children makes this message a sibling of them (an edit or a
        regeneration). The new message becomes the conversation's current leaf.
        """
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
        _check_provenance(provenance)
        with self.sessions.begin() as session:
            conversation = _conversation(session, owner, conversation_id)
            return _append(session, conversation, role, content, parent_id, at_root, status, provenance)

    def start_assistant_message(
        self, owner: str, conversation_id: str, parent_id: str | None = None, **provenance: Any
    ) -> Message:
        """An empty assistant message in status `streaming`, to be filled by `save_partial`."""
        return self.add_message(owner, conversation_id, "assistant", "", parent_id, status="streaming", **provenance)

    def start_turn(
        self,
        owner: str,
        conversation_id: str,
        user_text: str | None,
        parent_id: str | None = None,
        *,
        at_root: bool = False,
        **provenance: Any,
    ) -> tuple[Message | None, Message]:
        """The user's message (None: a regeneration has none) under `parent_id` as `add_message` places
        it, and the assistant's empty `streaming` reply under it, in one transaction: both or neither
        (a full disk or a lost connection never leaves a user message without its reply)."""
        _check_provenance(provenance)
        with self.sessions.begin() as session:
            conversation = _conversation(session, owner, conversation_id)
            user = None
            if user_text is not None:
                user = _append(session, conversation, "user", user_text, parent_id, at_root, "complete", {})
                parent_id, at_root = user.id, False
            assistant = _append(session, conversation, "assistant", "", parent_id, at_root, "streaming", provenance)
        return user, assistant

    def save_partial(self, owner: str, message_id: str, text: str, *, tokens: int | None = None) -> None:
        """Save the text streamed so far, and how many tokens it holds (one short transaction).

        Only while the message is still `streaming`: a partial save that reaches the database after
        the final one (its worker thread outlived the cancelled saver) changes nothing, so it can
        never put older text back into a finished message."""
        values: dict[str, Any] = {"content": text, "updated_at": utcnow()}
        if tokens is not None:
            values["completion_tokens"] = tokens
        with self.sessions.begin() as session:
            _message(session, owner, message_id)  # NotFound: another owner's, or deleted
            session.execute(
                update(Message)
                .where(Message.id == message_id, Message.status == "streaming")
                .values(**values)
                .execution_options(synchronize_session=False)
            )

    def finish_message(
        self,
        owner: str,
        message_id: str,
        status: str,
        finish_reason: str | None = None,
        *,
        content: str | None = None,
        **provenance: Any,
    ) -> Message:
        """Close a streamed message: final status, finish reason, usage and provenance."""
        if status not in FINAL_STATUSES:
            raise ValueError(f"status must be one of {', '.join(FINAL_STATUSES)}, not {status!r}")
        _check_provenance(provenance)
        with self.sessions.begin() as session:
            message = _message(session, owner, message_id)
            message.status = status
            message.finish_reason = finish_reason
            if content is not None:
                message.content = content
            for name, value in provenance.items():
                setattr(message, name, value)
            message.updated_at = utcnow()
        return message

    def tree(self, owner: str, conversation_id: str) -> Tree:
        """The conversation, its whole message tree (oldest first) and its current path, read together."""
        with self.reads() as session:
            conversation = _conversation(session, owner, conversation_id)
            messages = list(_all_messages(session, conversation.id))
        return Tree(conversation, messages, [m.id for m in path_in(messages, conversation.current_leaf_id)])

    def get_message(self, owner: str, message_id: str) -> Message:
        with self.reads() as session:
            return _message(session, owner, message_id)

    def path_to(self, owner: str, conversation_id: str, leaf_id: str | None = None) -> list[Message]:
        """Messages from the root to `leaf_id` (default: the current leaf): the model's context."""
        with self.reads() as session:
            conversation = _conversation(session, owner, conversation_id)
            leaf_id = leaf_id or conversation.current_leaf_id
            if leaf_id is None:
                return []
            path = path_in(_all_messages(session, conversation.id), leaf_id)
            if not path:
                raise NotFound(f"No message {leaf_id} in conversation {conversation_id}.")
            return path

    def siblings(self, owner: str, message_id: str) -> list[Message]:
        """The message and its siblings (same parent), oldest first: for ‹ 2/3 › navigation."""
        with self.reads() as session:
            message = _message(session, owner, message_id)
            query = select(Message).where(Message.conversation_id == message.conversation_id)
            if message.parent_id is None:
                query = query.where(Message.parent_id.is_(None))
            else:
                query = query.where(Message.parent_id == message.parent_id)
            return list(session.scalars(query.order_by(Message.created_at, Message.id)))

    def switch_branch(self, owner: str, conversation_id: str, message_id: str) -> Message:
        """Make the branch through `message_id` current: its deepest, latest descendant becomes the leaf."""
        with self.sessions.begin() as session:
            conversation = _conversation(session, owner, conversation_id)
            messages = _all_messages(session, conversation.id)
            by_id = {m.id: m for m in messages}
            if message_id not in by_id:
                raise NotFound(f"No message {message_id} in conversation {conversation_id}.")
            children: dict[str, list[Message]] = {}
            for m in messages:  # ordered oldest first, so the last child is the latest
                if m.parent_id is not None:
                    children.setdefault(m.parent_id, []).append(m)
            leaf = by_id[message_id]
            while leaf.id in children:
                leaf = children[leaf.id][-1]
            conversation.current_leaf_id = leaf.id
        return leaf

    def mark_interrupted_streams(self, saved_before: datetime | None = None) -> int:
        """At startup: every message still `streaming` was cut off by a crash; mark it `interrupted`.
        `saved_before`: only those not saved since (other processes on this database run the rest)."""
        stale = Message.updated_at < saved_before if saved_before is not None else true()
        with self.sessions.begin() as session:
            result = session.execute(
                update(Message)
                .where(Message.status == "streaming", stale)
                .values(status="interrupted", updated_at=utcnow())
            )
            return rowcount(result)

    def interrupt_if_stale(self, owner: str, message_id: str, saved_before: datetime) -> bool:
        """Mark one `streaming` message `interrupted` when it was not saved since `saved_before`
        (the process running it is gone); whether it was."""
        with self.sessions.begin() as session:
            message = _message(session, owner, message_id)
            if message.status != "streaming" or _aware(message.updated_at) >= saved_before:
                return False
            message.status, message.updated_at = "interrupted", utcnow()
            return True


def path_in(messages: Sequence[Message], leaf_id: str | None) -> list[Message]:
    """Root → `leaf_id` among `messages`; empty when the leaf is None or not among them."""
    by_id = {m.id: m for m in messages}
    path: list[Message] = []
    node = by_id.get(leaf_id) if leaf_id is not None else None
    while node is not None and len(path) <= len(by_id):  # the bound guards against a corrupt cycle
        path.append(node)
        node = by_id.get(node.parent_id) if node.parent_id is not None else None
    return path[::-1]


def _check_provenance(values: dict[str, Any]) -> None:
    unknown = set(values) - PROVENANCE_FIELDS
    if unknown:
        raise TypeError(f"unknown provenance fields: {', '.join(sorted(unknown))}")


def _append(
    session: Session,
    conversation: Conversation,
    role: str,
    content: str,
    parent_id: str | None,
    at_root: bool,
    status: str,
    provenance: dict[str, Any],
) -> Message:
    """Add a message (see `add_message`) inside `session`; it becomes the conversation's current leaf."""
    if at_root:
        parent_id = None
    elif parent_id is None:
        parent_id = conversation.current_leaf_id
    else:
        parent = session.get(Message, parent_id)
        if parent is None or parent.conversation_id != conversation.id:
            raise NotFound(f"No message {parent_id} in conversation {conversation.id}.")
    now = utcnow()
    message = Message(
        conversation_id=conversation.id,
        parent_id=parent_id,
        role=role,
        content=content,
        status=status,
        created_at=now,
        updated_at=now,
        **provenance,
    )
    session.add(message)
    session.flush()
    conversation.current_leaf_id = message.id
    conversation.updated_at = now
    return message


def _conversation(session: Session, owner: str, conversation_id: str) -> Conversation:
    conversation = session.get(Conversation, conversation_id)
    if conversation is None or conversation.owner != owner:
        raise NotFound(f"No conversation {conversation_id}.")
    return conversation


def _aware(moment: datetime) -> datetime:
    """SQLite gives back naive datetimes (stored in UTC)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _message(session: Session, owner: str, message_id: str) -> Message:
    message = session.scalar(
        select(Message)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Message.id == message_id, Conversation.owner == owner)
    )
    if message is None:
        raise NotFound(f"No message {message_id}.")
    return message


def _all_messages(session: Session, conversation_id: str) -> Sequence[Message]:
    return session.scalars(
        select(Message).where(Message.conversation_id == conversation_id).order_by(Message.created_at, Message.id)
    ).all()
