"""The command line: `mingyan serve | chat | db | models | users`. Thin: parse, call, print.

- `main`    the parser; errors become one readable line and an exit code
- `flags`   flags generated from the Settings declaration
- `serve`   refuse a public bind without authentication, load the model, run the HTTP server
- `chat`    the terminal chat (mingyan.terminal)
- `db`      database maintenance
- `models`  list, add, pull, rm, info
- `users`   accounts: create, list, disable, enable, delete, passwd, usage, quota
"""
