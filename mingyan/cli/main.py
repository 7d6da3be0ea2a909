"""`mingyan COMMAND`: the parser and the one place errors become a readable line and an exit code."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from mingyan import __version__
from mingyan.cli import chat, db, models, serve, users
from mingyan.cli.flags import settings_from_args
from mingyan.errors import MingyanError

COMMANDS = (serve, chat, db, models, users)  # each module adds its subcommand with register()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mingyan", description="明言 mingyan: a self-hosted bilingual chat assistant."
    )
    parser.add_argument("--version", action="version", version=f"mingyan {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
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
