"""`mingyan users ...`: create, list, disable, enable, delete, passwd, usage, quota.

Thin: parse, call `AccountStore`, print. Each action migrates and opens the database the way `mingyan db
upgrade` does and records what it did in the audit log (actor "cli").
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
import unicodedata
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from mingyan.accounts.metering import default_quota
from mingyan.accounts.service import AccountService, Actor
from mingyan.cli.db import DB_FIELDS
from mingyan.cli.flags import add_settings_flags
from mingyan.config import Settings
from mingyan.engine.llamacpp.prefix_cache import forget_on_disk
from mingyan.errors import MingyanError
from mingyan.store.accounts.account_store import AccountStore
from mingyan.store.accounts.types import LIMITS, User
from mingyan.store.errors import NotFound

T = TypeVar("T")
CLI = Actor("cli")  # how the audit log names actions of this command


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `users` subcommand (and its actions) to a CLI's subparsers."""
    parser = subparsers.add_parser(
        "users",
        help="manage accounts: create, list, disable, delete, passwords, usage, quotas",
        description="Manage the accounts of this server. Every change is written to the audit log.",
    )
    sub = parser.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    actions = [
        sub.add_parser(
            "create",
            help="create a user (asks for the password twice)",
            description="Create a user. Names: 1-64 letters (any script), digits, '.', '_', '-'; "
            "compared case-blind. Passwords: 8-1024 characters.",
        ),
        sub.add_parser("list", help="list users"),
        sub.add_parser("disable", help="disable a user: signs them out, their API keys stop working"),
        sub.add_parser("enable", help="enable a disabled user"),
        sub.add_parser("delete", help="delete a user with their conversations, keys and sessions"),
        sub.add_parser("passwd", help="set a user's password (signs them out everywhere)"),
        sub.add_parser("usage", help="requests and tokens per user"),
        sub.add_parser("quota", help="show or set a user's limits ('default': the server's)"),
    ]
    create, _list, disable, enable, delete, passwd, usage, quota = actions
    for action in (create, disable, enable, delete, passwd, quota):
        action.add_argument("name", help="username")
    create.add_argument("--admin", action="store_true", help="make the user an administrator")
    for action in (create, passwd):
        action.add_argument(
            "--password-stdin", action="store_true", help="read the password from the first line of stdin (for scripts)"
        )
    delete.add_argument("--yes", action="store_true", help="confirm: this cannot be undone")
    usage.add_argument("--since", metavar="YYYY-MM-DD", help="count from this day (UTC) on")
    for limit in LIMITS:
        quota.add_argument("--" + limit.replace("_", "-"), metavar="N", dest=limit, help="a whole number, or 'default'")
    add_settings_flags(delete, ("kv_dir", "cache_dir"))
    for action in actions:
        add_settings_flags(action, DB_FIELDS)
        action.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    kv_dir = settings.kv_dir or settings.cache_dir / "kv"
    with _open_accounts(settings) as accounts:
        # No live streams in this process; a deleted user's saved KV states are removed from disk
        # (a running server keeps its RAM copies: delete through the admin API then).
        service = AccountService(
            accounts, default_quota(settings), forget=lambda user_id: forget_on_disk(kv_dir, user_id)
        )
        try:
            return _ACTIONS[args.users_command](args, service)
        except SQLAlchemyError as exc:
            raise MingyanError(f"database error: {_first_line(exc)}") from exc


@contextmanager
def _open_accounts(settings: Settings) -> Iterator[AccountStore]:
    from mingyan.bootstrap import database_url, migrate_database
    from mingyan.store.db import Database

    migrate_database(settings)
    db = Database.open(database_url(settings))
    try:
        yield AccountStore.open(db)
    finally:
        db.dispose()


# ---- actions -----------------------------------------------------------------------------------


def _create(args: argparse.Namespace, service: AccountService) -> int:
    accounts = service.store
    if accounts.users.find_user(args.name) is not None:  # before asking for a password
        raise MingyanError(f"the username {args.name} is taken")
    if (existing := accounts.users.find_lookalike(args.name)) is not None:
        raise MingyanError(f"the username {args.name} looks like the existing username {existing}; choose another")
    role = "admin" if args.admin else "user"
    user = _run(service.create_user(CLI, args.name, _read_password(args, args.name), role=role))
    print(f"created {user.username} ({role})")
    return 0


def _list(args: argparse.Namespace, service: AccountService) -> int:
    accounts = service.store
    users = accounts.users.list_users()
    if not users:
        print("no users yet: create one with `mingyan users create NAME --admin`")
        return 0
    rows = [("NAME", "ROLE", "STATUS", "CREATED")]
    rows += [(u.username, u.role, "disabled" if u.disabled else "active", _when(u.created_at)) for u in users]
    _print_table(rows)
    return 0


def _disable(args: argparse.Namespace, service: AccountService) -> int:
    accounts = service.store
    user = _run(service.set_disabled(CLI, _user(accounts, args.name).id, True))
    print(f"disabled {user.username}: signed out everywhere; their API keys stop working until enabled")
    return 0


def _enable(args: argparse.Namespace, service: AccountService) -> int:
    accounts = service.store
    user = _run(service.set_disabled(CLI, _user(accounts, args.name).id, False))
    print(f"enabled {user.username}")
    return 0


def _delete(args: argparse.Namespace, service: AccountService) -> int:
    accounts = service.store
    user = _user(accounts, args.name)
    if not args.yes:
        raise MingyanError(
            f"deleting {user.username} removes their conversations, API keys and sessions for good; "
            "add --yes to confirm"
        )
    conversations = _run(service.delete_user(CLI, user.id))
    print(f"deleted {user.username} and {conversations} conversation(s)")
    return 0


def _passwd(args: argparse.Namespace, service: AccountService) -> int:
    accounts = service.store
    user = _user(accounts, args.name)
    _run(service.reset_password(CLI, user.id, _read_password(args, user.username)))
    print(f"password of {user.username} changed; their login sessions ended")
    return 0


def _usage(args: argparse.Namespace, service: AccountService) -> int:
    accounts = service.store
    since = _day(args.since) if args.since else None
    totals = accounts.ledger.usage_totals(since=since)
    if not totals:
        print("no usage recorded" + (f" since {args.since}" if since else ""))
        return 0
    rows: list[tuple[str, ...]] = [("USER", "REQUESTS", "PROMPT", "CACHED", "COMPLETION")]
    for t in totals:
        name = t.username or "(no user)"
        if t.user_id is None and t.username:
            name += " (deleted)"
        counts = (t.requests, t.prompt_tokens, t.cached_tokens, t.completion_tokens)
        rows.append((name, *(str(n) for n in counts)))
    _print_table(rows)
    return 0


def _quota(args: argparse.Namespace, service: AccountService) -> int:
    accounts = service.store
    user = _user(accounts, args.name)
    # Any: mypy checks a ** mapping against every keyword of audit(), `ip` included.
    changes: dict[str, Any] = {
        name: _limit(name, getattr(args, name)) for name in LIMITS if getattr(args, name) is not None
    }
    if changes:
        overrides = _run(service.set_quota(CLI, user.id, **changes))
    else:
        overrides = accounts.ledger.get_quota_overrides(user.id)
    for name in LIMITS:
        value = getattr(overrides, name)
        print(f"{name}: {'default' if value is None else value}")
    return 0


_ACTIONS: dict[str, Callable[[argparse.Namespace, AccountService], int]] = {
    "create": _create,
    "list": _list,
    "disable": _disable,
    "enable": _enable,
    "delete": _delete,
    "passwd": _passwd,
    "usage": _usage,
    "quota": _quota,
}


# ---- helpers -----------------------------------------------------------------------------------


def _run(step: Coroutine[Any, Any, T]) -> T:
    """Run one account-service step to its end (this command has no event loop of its own)."""
    return asyncio.run(step)


def _user(accounts: AccountStore, name: str) -> User:
    user = accounts.users.find_user(name)
    if user is None:
        raise NotFound(f"no user {name}")
    return user


def _read_password(args: argparse.Namespace, name: str) -> str:
    """From stdin's first line with --password-stdin; otherwise typed twice at the terminal."""
    from mingyan.store.accounts.credentials import check_password

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise MingyanError("--password-stdin: no password on the first line of stdin")
        return password
    if not sys.stdin.isatty():
        raise MingyanError("stdin is not a terminal: pass the password with --password-stdin")
    password = getpass.getpass(f"New password for {name}: ")
    check_password(password)
    if getpass.getpass("Repeat it: ") != password:
        raise MingyanError("the passwords do not match")
    return password


def _limit(name: str, text: str) -> int | None:
    if text.strip().lower() == "default":
        return None
    try:
        return int(text)
    except ValueError:
        flag = "--" + name.replace("_", "-")
        raise MingyanError(f"{flag} takes a whole number or 'default', not {text!r}") from None


def _day(text: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise MingyanError(f"--since takes a date like 2026-01-31, not {text!r}") from None


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _width(text: str) -> int:
    """Columns on a terminal: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _print_table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(_width(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [cell + " " * (width - _width(cell)) for cell, width in zip(row, widths, strict=True)]
        print("  ".join(cells).rstrip())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
