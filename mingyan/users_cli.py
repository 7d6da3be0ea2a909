"""`mingyan users ...`: create, list, disable, enable, delete, passwd, usage, quota.

Thin: parse, call `Accounts`, print. Each action migrates and opens the database the way `mingyan db
upgrade` does and records what it did in the audit log (actor "cli").
"""

from __future__ import annotations

import argparse
import getpass
import sys
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime

from mingyan.config import Settings
from mingyan.engine.prefix_cache import forget_on_disk
from mingyan.errors import MingyanError
from mingyan.store.account_types import LIMITS, User
from mingyan.store.accounts import Accounts
from mingyan.store.errors import NotFound

ACTOR = "cli"
DB_FIELDS = ("database_url", "data_dir")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the `users` subcommand (and its actions) to a CLI's subparsers."""
    from mingyan.cli import add_settings_flags

    parser = subparsers.add_parser(
        "users", help="manage accounts: create, list, disable, delete, passwords, usage, quotas",
        description="Manage the accounts of this server. Every change is written to the audit log.",
    )
    sub = parser.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    actions = [
        sub.add_parser("create", help="create a user (asks for the password twice)",
                       description="Create a user. Names: 1-64 letters (any script), digits, '.', '_', '-'; "
                       "compared case-blind. Passwords: 8-1024 characters."),
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
        action.add_argument("--password-stdin", action="store_true",
                            help="read the password from the first line of stdin (for scripts)")
    delete.add_argument("--yes", action="store_true", help="confirm: this cannot be undone")
    usage.add_argument("--since", metavar="YYYY-MM-DD", help="count from this day (UTC) on")
    for limit in LIMITS:
        quota.add_argument("--" + limit.replace("_", "-"), metavar="N", dest=limit,
                           help="a whole number, or 'default'")
    add_settings_flags(delete, ("kv_dir", "cache_dir"))
    for action in actions:
        add_settings_flags(action, DB_FIELDS)
        action.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    args.kv_dir = settings.kv_dir or settings.cache_dir / "kv"
    with _open_accounts(settings) as accounts:
        try:
            return _ACTIONS[args.users_command](args, accounts)
        except SQLAlchemyError as exc:
            raise MingyanError(f"database error: {_first_line(exc)}") from exc


@contextmanager
def _open_accounts(settings: Settings) -> Iterator[Accounts]:
    from mingyan.runtime import database_url, migrate_database
    from mingyan.store.db import open_database
    from mingyan.store.repository import Store

    migrate_database(settings)
    engine = open_database(database_url(settings))
    try:
        yield Accounts(Store(engine))
    finally:
        engine.dispose()


# ---- actions -----------------------------------------------------------------------------------


def _create(args: argparse.Namespace, accounts: Accounts) -> int:
    if accounts.find_user(args.name) is not None:  # before asking for a password
        raise MingyanError(f"the username {args.name} is taken")
    role = "admin" if args.admin else "user"
    user = accounts.create_user(args.name, _read_password(args, args.name), role=role)
    accounts.audit("user_created", actor=ACTOR, target=user.username, role=role)
    print(f"created {user.username} ({role})")
    return 0


def _list(args: argparse.Namespace, accounts: Accounts) -> int:
    users = accounts.list_users()
    if not users:
        print("no users yet: create one with `mingyan users create NAME --admin`")
        return 0
    rows = [("NAME", "ROLE", "STATUS", "CREATED")]
    rows += [(u.username, u.role, "disabled" if u.disabled else "active", _when(u.created_at)) for u in users]
    _print_table(rows)
    return 0


def _disable(args: argparse.Namespace, accounts: Accounts) -> int:
    user = accounts.set_disabled(_user(accounts, args.name).id, True)
    accounts.audit("user_disabled", actor=ACTOR, target=user.username)
    print(f"disabled {user.username}: signed out everywhere; their API keys stop working until enabled")
    return 0


def _enable(args: argparse.Namespace, accounts: Accounts) -> int:
    user = accounts.set_disabled(_user(accounts, args.name).id, False)
    accounts.audit("user_enabled", actor=ACTOR, target=user.username)
    print(f"enabled {user.username}")
    return 0


def _delete(args: argparse.Namespace, accounts: Accounts) -> int:
    user = _user(accounts, args.name)
    if not args.yes:
        raise MingyanError(
            f"deleting {user.username} removes their conversations, API keys and sessions for good; "
            "add --yes to confirm"
        )
    conversations = accounts.delete_user(user.id)
    forget_on_disk(args.kv_dir, user.id)  # their saved KV states (a running server: use the admin API)
    accounts.audit("user_deleted", actor=ACTOR, target=user.username, conversations=conversations)
    print(f"deleted {user.username} and {conversations} conversation(s)")
    return 0


def _passwd(args: argparse.Namespace, accounts: Accounts) -> int:
    user = _user(accounts, args.name)
    accounts.reset_password(user.id, _read_password(args, user.username))
    accounts.audit("password_changed", actor=ACTOR, target=user.username, reset=True)
    print(f"password of {user.username} changed; their login sessions ended")
    return 0


def _usage(args: argparse.Namespace, accounts: Accounts) -> int:
    since = _day(args.since) if args.since else None
    totals = accounts.usage_totals(since=since)
    if not totals:
        print("no usage recorded" + (f" since {args.since}" if since else ""))
        return 0
    rows = [("USER", "REQUESTS", "PROMPT", "CACHED", "COMPLETION")]
    for t in totals:
        name = t.username or "(no user)"
        if t.user_id is None and t.username:
            name += " (deleted)"
        counts = (t.requests, t.prompt_tokens, t.cached_tokens, t.completion_tokens)
        rows.append((name, *(str(n) for n in counts)))
    _print_table(rows)
    return 0


def _quota(args: argparse.Namespace, accounts: Accounts) -> int:
    user = _user(accounts, args.name)
    changes = {name: _limit(name, getattr(args, name)) for name in LIMITS if getattr(args, name) is not None}
    if changes:
        overrides = accounts.set_quota(user.id, **changes)
        accounts.audit("quota_changed", actor=ACTOR, target=user.username, **changes)
    else:
        overrides = accounts.get_quota_overrides(user.id)
    for name in LIMITS:
        value = getattr(overrides, name)
        print(f"{name}: {'default' if value is None else value}")
    return 0


_ACTIONS: dict[str, Callable[[argparse.Namespace, Accounts], int]] = {
    "create": _create, "list": _list, "disable": _disable, "enable": _enable, "delete": _delete,
    "passwd": _passwd, "usage": _usage, "quota": _quota,
}


# ---- helpers -----------------------------------------------------------------------------------


def _user(accounts: Accounts, name: str) -> User:
    user = accounts.find_user(name)
    if user is None:
        raise NotFound(f"no user {name}")
    return user


def _read_password(args: argparse.Namespace, name: str) -> str:
    """From stdin's first line with --password-stdin; otherwise typed twice at the terminal."""
    from mingyan.store.credentials import check_password

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
        cells = [cell + " " * (width - _width(cell)) for cell, width in zip(row, widths)]
        print("  ".join(cells).rstrip())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
