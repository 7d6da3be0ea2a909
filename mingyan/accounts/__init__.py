"""Accounts: the service layer for users, sessions, keys, quotas, usage and audit.

- `service`    AccountService: each workflow once (setup, sign-in, users, passwords, keys, quotas),
               with its store change, stream cut-off, KV-state removal and audit entry
- `principal`  who is asking (an account, or the operator's local identity)
- `quotas`     the quota gate checked at admission (requests per minute, tokens per day, streams)
- `metering`   admission and usage recording; cut-offs of running streams
- `streams`    the generations running in this process, as the workflows reach them
- `throttle`   sign-in throttling per address and name, and per address
- `setup`      the one-time first-run setup token
"""
