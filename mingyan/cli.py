"""Command line: `mingyan serve | chat | models ...`. Thin: parse, call, print."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import SecretStr, ValidationError

from mingyan import __version__
from mingyan.config import Settings
from mingyan.errors import MingyanError

SERVE_FIELDS = (
    "host", "port", "model", "embedding_model", "database_url", "n_ctx", "n_slots", "n_threads", "n_batch", "prefill_chunk",
    "max_queue", "cache_ram_mb", "cache_disk_mb", "kv_dir", "api_key", "auto_titles", "session_hours",
    "quota_requests_per_minute", "quota_tokens_per_day", "quota_concurrent_streams",
    "max_body_bytes", "max_import_bytes", "data_dir", "cache_dir", "hf_endpoint",
)
CHAT_FIELDS = ("model", "n_ctx", "n_threads", "n_batch", "data_dir", "cache_dir")


def add_settings_flags(parser: argparse.ArgumentParser, names: Sequence[str]) -> None:
    """One flag per Settings field; help text and defaults come from the declaration."""
    for name in names:
        field = Settings.model_fields[name]
        kind = field.annotation
        help_text = f"{field.description} (env MINGYAN_{name.upper()})"
        if kind is bool:
            parser.add_argument(
                "--" + name.replace("_", "-"), dest=f"setting_{name}", default=None,
                action=argparse.BooleanOptionalAction, help=help_text,
            )
            continue
        convert = int if kind is int else Path if kind is Path else str
        parser.add_argument(
            "--" + name.replace("_", "-"), dest=f"setting_{name}", type=convert, default=None,
            metavar=name.upper(), help=help_text,
        )


def settings_from_args(args: argparse.Namespace) -> Settings:
    overrides = {
        key.removeprefix("setting_"): value
        for key, value in vars(args).items()
        if key.startswith("setting_") and value is not None
    }
    for secret in ("api_key", "database_url"):
        if secret in overrides:
            overrides[secret] = SecretStr(overrides[secret])
    return Settings(**overrides)


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from mingyan.server import serve

    serve(settings)
    return 0


def _chat(args: argparse.Namespace, settings: Settings) -> int:
    from mingyan.chat.terminal import ChatOptions, run_terminal_chat

    options = ChatOptions(
        url=args.url, api_key=args.api_key, system=args.system, max_tokens=args.max_tokens,
        history=args.history, list=args.list, search=args.search, resume=args.resume,
    )
    return run_terminal_chat(settings, options)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    from mingyan.runtime import migrate_database

    print(f"database {migrate_database(settings)} is up to date")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from mingyan import users_cli
    from mingyan.models import cli as models_cli

    parser = argparse.ArgumentParser(
        prog="mingyan", description="明言 mingyan: a self-hosted bilingual chat assistant."
    )
    parser.add_argument("--version", action="version", version=f"mingyan {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the OpenAI-compatible HTTP server",
                                description="Run the OpenAI-compatible HTTP server.")
    add_settings_flags(serve, SERVE_FIELDS)
    serve.set_defaults(handler=_serve)

    chat = commands.add_parser(
        "chat", help="chat in the terminal",
        description="Chat in the terminal. In-process (no --url) or with --no-history, the history stays in "
        "memory; commands: /system TEXT, /reset, /help, /exit. Against a mingyan server (--url), the "
        "conversations are stored by the server; more commands: /list, /search TEXT, /resume N|ID, /new, "
        "/title TEXT.")
    chat.add_argument("--url", help="talk to a running server (e.g. http://127.0.0.1:8000)")
    chat.add_argument("--api-key", help="API key for --url (or env MINGYAN_API_KEY)")
    chat.add_argument("--system", help="system prompt for new conversations")
    chat.add_argument("--max-tokens", type=_positive_int, metavar="N", help="longest reply, in tokens")
    chat.add_argument("--no-history", dest="history", action="store_false",
                      help="with --url: plain /v1/chat/completions, history kept in memory only "
                      "(works with any OpenAI-compatible server)")
    chat.add_argument("--list", action="store_true", help="with --url: print the recent conversations and exit")
    chat.add_argument("--search", metavar="TEXT", help="with --url: search the stored conversations and exit")
    chat.add_argument("--resume", metavar="ID", help="with --url: continue the stored conversation ID")
    add_settings_flags(chat, CHAT_FIELDS)
    chat.set_defaults(handler=_chat)

    db = commands.add_parser("db", help="manage the history database",
                             description="Manage the conversation history database.")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    upgrade = db_commands.add_parser("upgrade", help="apply schema migrations (serve does this too)",
                                     description="Apply the schema migrations to the database.")
    add_settings_flags(upgrade, ("database_url", "data_dir"))
    upgrade.set_defaults(handler=_db_upgrade)

    models_cli.register(commands)
    users_cli.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = settings_from_args(args)
        return int(args.handler(args, settings) or 0)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        print(f"error: invalid setting {where}: {first['msg']}", file=sys.stderr)
    except MingyanError as exc:
        print(f"error: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        return 130
    return 1


if __name__ == "__main__":
    sys.exit(main())
