"""Users and their login sessions.

Each method uses short transactions (a write at most once); password hashing runs before the write, never
while it holds the lock. Methods block (argon2 takes ~0.1 s by design): async callers run them in a thread.
They return frozen snapshots (types.py) that carry no secret.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mingyan.store import tables as t
from mingyan.store.accounts.credentials import (
    Passwords,
    check_password,
    check_username,
    digest,
    matches,
    new_token,
)
from mingyan.store.accounts.lookalikes import Skeletons
from mingyan.store.accounts.rows import TOUCH_INTERVAL, clip, touch, user_row
from mingyan.store.accounts.types import LoginSession, User, aware
from mingyan.store.db import Database, rowcount
from mingyan.store.errors import AuthFailed, Conflict, InvalidValue
from mingyan.store.tables import Conversation, Message, utcnow


class UserStore:
    """Users and their login sessions, for one database.

    `passwords` and `clock` are injectable (tests pass cheaper argon2id parameters and a fake clock).
    """

    def __init__(
        self,
        db: Database,
        *,
        passwords: Passwords | None = None,
        clock: Callable[[], datetime] = utcnow,
        skeletons: Skeletons | None = None,
    ) -> None:
        self.db = db
        self.passwords = passwords or Passwords()
        self.skeletons = skeletons or Skeletons()
        self._clock = clock

    def now(self) -> datetime:
        """The current time, UTC."""
        return aware(self._clock())

    # ---- users ---------------------------------------------------------------------------------

    def create_user(self, username: str, password: str, *, role: str = "user", first: bool = False) -> User:
        """A new, enabled user. Conflict when the username (compared case-blind) is taken.

        With `first` (the first-run setup), only while no user exists at all: decided inside the write
        transaction, so of several made at once (even by several processes) exactly one is made.
        """
        key = check_username(username)
        _check_role(role)
        password_hash = self.passwords.hash(password)
        now = self.now()
        row = t.User(
            username=username,
            username_key=key,
            password_hash=password_hash,
            role=role,
            disabled=False,
            created_at=now,
            updated_at=now,
            password_changed_at=now,
        )
        taken = Conflict(f"The username {username} is taken.", code="username_taken")
        try:
            with self.db.sessions.begin() as session:
                _lock_users(session)
                if first:
                    _check_no_users(session)
                if session.scalar(select(t.User.id).where(t.User.username_key == key)) is not None:
                    raise taken
                self._refuse_lookalike(session, username)
                session.add(row)
        except IntegrityError as exc:  # a concurrent create won the race
            raise taken from exc
        return User.of(row)

    def find_lookalike(self, username: str) -> str | None:
        """An existing username that `username` looks like (same confusables skeleton), or None."""
        with self.db.reads() as session:
            return self._lookalike(session, username)

    def _lookalike(self, session: Session, username: str) -> str | None:
        skeleton = self.skeletons(username)
        return next((n for n in session.scalars(select(t.User.username)) if self.skeletons(n) == skeleton), None)

    def _refuse_lookalike(self, session: Session, username: str) -> None:
        """Conflict when the name's confusables skeleton is an existing user's (`аdmin` beside `admin`)."""
        existing = self._lookalike(session, username)
        if existing is not None:
            raise Conflict(
                f"The username {username} looks like the existing username {existing}; choose another.",
                code="username_lookalike",
            )

    def authenticate(self, username: str, password: str) -> User | None:
        """The user, if the password matches and the account is enabled; otherwise None.

        An unknown username costs one argon2 verification too, so timing does not tell which names exist.
        A hash made with older parameters is replaced by one with the current parameters.
        """
        row = self._row_by_name(username)
        if row is None:
            self.passwords.verify_nothing(password)
            return None
        if not self.passwords.verify(row.password_hash, password) or row.disabled:
            return None
        if self.passwords.needs_rehash(row.password_hash):
            self._store_hash(row.id, self.passwords.hash(password), expected=row.password_hash, rehash=True)
        return User.of(row)

    def get_user(self, user_id: str) -> User:
        with self.db.reads() as session:
            return User.of(user_row(session, user_id))

    def find_user(self, username: str) -> User | None:
        """By name, compared case-blind; None when there is no such user."""
        row = self._row_by_name(username)
        return None if row is None else User.of(row)

    def list_users(self) -> list[User]:
        with self.db.reads() as session:
            rows = session.scalars(select(t.User).order_by(t.User.username_key))
            return [User.of(row) for row in rows]

    def count_users(self) -> int:
        with self.db.reads() as session:
            return session.scalar(select(func.count()).select_from(t.User)) or 0

    def has_admin(self) -> bool:
        """Whether an enabled admin exists (a fresh install has none until one is created)."""
        with self.db.reads() as session:
            return session.scalar(select(t.User.id).where(*_ENABLED_ADMIN).limit(1)) is not None

    def set_password(self, user_id: str, old: str, new: str, *, keep_session: str | None = None) -> None:
        """The user changes their own password: AuthFailed unless `old` matches.

        Signs out every login session of the user but `keep_session` (a LoginSession.id: the caller's).
        """
        check_password(new)
        row = self._row(user_id)
        if not self.passwords.verify(row.password_hash, old):
            raise AuthFailed("The current password is wrong.")
        new_hash = self.passwords.hash(new)
        self._store_hash(user_id, new_hash, expected=row.password_hash, keep_session=keep_session)

    def reset_password(self, user_id: str, new: str) -> None:
        """An admin sets the password; every login session of the user ends."""
        self._store_hash(user_id, self.passwords.hash(new))

    def set_role(self, user_id: str, role: str) -> User:
        """Conflict when this would leave no enabled admin."""
        _check_role(role)
        with self.db.sessions.begin() as session:
            if role != "admin":
                _keep_an_admin(session, user_id)
            row = user_row(session, user_id)
            row.role, row.updated_at = role, self.now()
        return User.of(row)

    def set_disabled(self, user_id: str, disabled: bool) -> User:
        """Disabling also ends the user's login sessions, in the same transaction (their keys stop
        resolving while disabled). Conflict when this would leave no enabled admin."""
        with self.db.sessions.begin() as session:
            if disabled:
                _keep_an_admin(session, user_id)
            row = user_row(session, user_id)
            row.disabled, row.updated_at = bool(disabled), self.now()
            if disabled:
                session.execute(delete(t.LoginSession).where(t.LoginSession.user_id == user_id))
        return User.of(row)

    def delete_user(self, user_id: str) -> int:
        """Delete the user with their conversations, login sessions, keys and quota, in one transaction.

        Usage records stay (user id emptied, name kept) and so does the audit log. Conflict when this
        would leave no enabled admin. Returns how many conversations went.
        """
        with self.db.sessions.begin() as session:
            _keep_an_admin(session, user_id)
            user_row(session, user_id)
            gone = _delete_conversations(session, user_id)
            session.execute(delete(t.User).where(t.User.id == user_id))
        return gone

    def _row(self, user_id: str) -> t.User:
        with self.db.reads() as session:
            return user_row(session, user_id)

    def _row_by_name(self, username: str) -> t.User | None:
        try:
            key = check_username(username)
        except InvalidValue:
            return None
        with self.db.reads() as session:
            return session.scalar(select(t.User).where(t.User.username_key == key))

    def _store_hash(
        self,
        user_id: str,
        password_hash: str,
        *,
        expected: str | None = None,
        keep_session: str | None = None,
        rehash: bool = False,
    ) -> None:
        """Replace the hash (only if it is still `expected`, when given) and end login sessions."""
        now = self.now()
        with self.db.sessions.begin() as session:
            row = user_row(session, user_id)
            if expected is not None and row.password_hash != expected:
                if rehash:
                    return  # the password changed meanwhile: the new hash is newer than ours
                raise AuthFailed("The password changed meanwhile; try again.")
            row.password_hash = password_hash
            if rehash:
                return  # same password, stronger hash: nothing else changes
            row.password_changed_at = row.updated_at = now
            ended = delete(t.LoginSession).where(t.LoginSession.user_id == user_id)
            if keep_session is not None:
                ended = ended.where(t.LoginSession.id != keep_session)
            session.execute(ended)

    # ---- login sessions ------------------------------------------------------------------------

    def create_session(
        self, user_id: str, *, ttl_s: float, ip: str | None = None, user_agent: str | None = None
    ) -> tuple[str, str]:
        """A login session for an enabled user: returns (session token, CSRF token), stored only hashed."""
        if not ttl_s > 0:
            raise InvalidValue("a login session lasts a positive number of seconds", param="ttl_s")
        token, csrf = new_token(), new_token()
        now = self.now()
        with self.db.sessions.begin() as session:
            if user_row(session, user_id).disabled:
                raise AuthFailed("This account is disabled.")
            session.add(
                t.LoginSession(
                    id=digest(token),
                    user_id=user_id,
                    csrf_hash=digest(csrf),
                    created_at=now,
                    expires_at=now + timedelta(seconds=ttl_s),
                    last_seen_at=now,
                    ip=clip(ip, 64),
                    user_agent=clip(user_agent, 200),
                )
            )
        return token, csrf

    def resolve_session(self, token: str) -> tuple[User, LoginSession] | None:
        """The signed-in user and their session; None for an unknown, expired or disabled one."""
        if not isinstance(token, str) or not token:
            return None
        session_id = digest(token)
        with self.db.reads() as session:
            found = session.execute(
                select(t.LoginSession, t.User)
                .join(t.User, t.User.id == t.LoginSession.user_id)
                .where(t.LoginSession.id == session_id)
            ).first()
        if found is None:
            return None
        login, user = LoginSession.of(found[0]), User.of(found[1])
        now = self.now()
        if login.expires_at <= now:
            self._delete_sessions(t.LoginSession.id == session_id)
            return None
        if user.disabled:
            return None
        if now - login.last_seen_at >= TOUCH_INTERVAL:
            touch(self.db, t.LoginSession, session_id, last_seen_at=now)
            login = replace(login, last_seen_at=now)
        return user, login

    @staticmethod
    def check_csrf(session: LoginSession, csrf_token: str) -> bool:
        """Whether `csrf_token` is the one issued with `session` (compared in constant time)."""
        return isinstance(csrf_token, str) and bool(csrf_token) and matches(csrf_token, session.csrf_hash)

    def delete_session(self, token: str) -> bool:
        """Sign out one session; False when there was none."""
        if not isinstance(token, str) or not token:
            return False
        return self._delete_sessions(t.LoginSession.id == digest(token)) > 0

    def delete_sessions(self, user_id: str) -> int:
        """Sign out everywhere; returns how many sessions ended."""
        return self._delete_sessions(t.LoginSession.user_id == user_id)

    def purge_expired_sessions(self) -> int:
        return self._delete_sessions(t.LoginSession.expires_at <= self.now())

    def _delete_sessions(self, condition: Any) -> int:
        with self.db.sessions.begin() as session:
            return rowcount(session.execute(delete(t.LoginSession).where(condition)))


_ENABLED_ADMIN = (t.User.role == "admin", t.User.disabled.is_(False))


def _check_role(role: str) -> None:
    if role not in t.USER_ROLES:
        raise InvalidValue(f"role must be one of {', '.join(t.USER_ROLES)}, not {role!r}", param="role")


def _delete_conversations(session: Session, owner: str) -> int:
    """All of an owner's conversations. Leaf pointers and parent links are cut first, as
    `ConversationStore.delete_conversation` does: a cascade down a long chain of replies would recurse once per
    message (SQLite stops at 1,000 levels)."""
    owned = select(Conversation.id).where(Conversation.owner == owner).scalar_subquery()
    unsynced = {"synchronize_session": False}
    session.execute(
        update(Conversation).where(Conversation.owner == owner).values(current_leaf_id=None),
        execution_options=unsynced,
    )
    in_owned = Message.conversation_id.in_(owned)
    session.execute(update(Message).where(in_owned).values(parent_id=None), execution_options=unsynced)
    session.execute(delete(Message).where(in_owned), execution_options=unsynced)
    gone = session.execute(delete(Conversation).where(Conversation.owner == owner), execution_options=unsynced)
    return rowcount(gone)


def _lock_users(session: Session) -> None:
    """Hold the users table against other writers until the transaction ends, so what a new user is
    checked against (no user yet; no look-alike name) cannot change meanwhile. PostgreSQL locks the
    table; SQLite's writers are serialized already."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"LOCK TABLE {t.User.__tablename__} IN SHARE ROW EXCLUSIVE MODE"))


def _check_no_users(session: Session) -> None:
    """Conflict unless the users table is empty (lock it first)."""
    if session.scalar(select(t.User.id).limit(1)) is not None:
        raise Conflict("Setup is done already: sign in instead.", code="setup_done")


def _keep_an_admin(session: Session, user_id: str) -> None:
    """Refuse to demote, disable or delete the last enabled admin.

    The admin rows are locked (PostgreSQL), so two admins removing each other at once cannot both pass;
    SQLite's writers are serialized already.
    """
    admins = session.scalars(select(t.User.id).where(*_ENABLED_ADMIN).with_for_update()).all()
    if admins == [user_id]:
        raise Conflict("This is the last enabled admin; make another user admin first.", code="last_admin")
