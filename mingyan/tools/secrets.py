"""Encryption of tool servers' auth headers (Fernet: AES-128-CBC + HMAC-SHA256).

The key is a file in the data directory (`tool-secrets.key`, mode 0600), made on first use; the
database holds only the encrypted headers. A database copied without the key file yields
servers whose headers cannot be read (the calls fail with an error result, nothing else).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

KEY_FILE = "tool-secrets.key"


class HeaderVault:
    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / KEY_FILE
        self._fernet: Fernet | None = None

    def _key(self) -> Fernet:
        if self._fernet is None:
            if not self.path.exists():
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as file:
                    file.write(Fernet.generate_key())
            self._fernet = Fernet(self.path.read_bytes().strip())
        return self._fernet

    def seal(self, headers: dict[str, str]) -> str | None:
        return self._key().encrypt(json.dumps(headers).encode()).decode() if headers else None

    def open(self, secret: str | None) -> dict[str, str]:
        """The headers; raises ValueError when they cannot be decrypted (another key)."""
        if not secret:
            return {}
        try:
            return dict(json.loads(self._key().decrypt(secret.encode())))
        except InvalidToken as exc:
            raise ValueError(
                "the headers of this tool server cannot be decrypted with this data directory's key"
            ) from exc
