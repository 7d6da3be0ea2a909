"""`mingyan chat`: the terminal chat, in-process or against a server. Thin: parse, call, print."""

from __future__ import annotations

import argparse

from mingyan.cli.flags import add_settings_flags
from mingyan.config import Settings

CHAT_FIELDS = ("model", "n_ctx", "n_threads", "n_batch", "data_dir", "cache_dir")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    chat = subparsers.add_parser(
        "chat",
        help="chat in the terminal",
        description="Chat in the terminal. In-process (no --url) or with --no-history, the history stays in "
        "memory; commands: /system TEXT, /reset, /help, /exit. Against a mingyan server (--url), the "
        "conversations are stored by the server; more commands: /list, /search TEXT, /resume N|ID, /new, "
        "/title TEXT.",
    )
    chat.add_argument("--url", help="talk to a running server (e.g. http://127.0.0.1:8000)")
    chat.add_argument("--api-key", help="API key for --url (or env MINGYAN_API_KEY)")
    chat.add_argument("--system", help="system prompt for new conversations")
    chat.add_argument("--max-tokens", type=_positive_int, metavar="N", help="longest reply, in tokens")
    chat.add_argument(
        "--no-history",
        dest="history",
        action="store_false",
        help="with --url: plain /v1/chat/completions, history kept in memory only "
        "(works with any OpenAI-compatible server)",
    )
    chat.add_argument("--list", action="store_true", help="with --url: print the recent conversations and exit")
    chat.add_argument("--search", metavar="TEXT", help="with --url: search the stored conversations and exit")
    chat.add_argument("--resume", metavar="ID", help="with --url: continue the stored conversation ID")
    add_settings_flags(chat, CHAT_FIELDS)
    chat.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from mingyan.terminal.app import ChatOptions, run_terminal_chat

    options = ChatOptions(
        url=args.url,
        api_key=args.api_key,
        system=args.system,
        max_tokens=args.max_tokens,
        history=args.history,
        list=args.list,
        search=args.search,
        resume=args.resume,
    )
    return run_terminal_chat(settings, options)
