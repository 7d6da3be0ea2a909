"""Rules and one-way transforms for account secrets.

Usernames: 1-64 letters (any script), digits, `.`, `_`, `-`; unique case-blind through their NFKC casefold.
Passwords: NFKC-normalized (so full-width and half-width input match), 8-1024 characters, argon2id.
Tokens (login session, CSRF, API key): random, stored only as sha256 hex digests.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import unicodedata
from functools import cached_property

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from mingyan.store.errors import InvalidValue

USERNAME_MAX = 64
USERNAME_KEY_MAX = 128
USERNAME_PUNCTUATION = frozenset("._-")
PASSWORD_MIN = 8
PASSWORD_MAX = 1024
API_KEY_PREFIX = "my-"
SHOWN_PREFIX_CHARS = 12


def username_key(username: str) -> str:
    """The form two usernames are compared in: `Zhang.San` and `ｚｈａｎｇ.san` are the same user."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", username).casefold())


def check_username(username: object) -> str:
    """The username's key, or InvalidValue saying which rule it breaks."""
    if not isinstance(username, str) or not 1 <= len(username) <= USERNAME_MAX:
        raise InvalidValue(f"a username has 1 to {USERNAME_MAX} characters", param="username")
    for char in username:
        if not _username_char(char):
            raise InvalidValue(
                f"a username holds letters, digits, '.', '_' and '-' only, not {char!r}", param="username"
            )
    if unicodedata.category(username[0]).startswith("M"):
        raise InvalidValue("a username cannot start with a combining mark", param="username")
    key = username_key(username)
    if len(key) > USERNAME_KEY_MAX or not all(_username_char(char) for char in key):
        raise InvalidValue("this username's compatibility form holds characters a username may not", param="username")
    return key


def _username_char(char: str) -> bool:
    category = unicodedata.category(char)
    # Letters of any script, their combining marks (Devanagari, Thai...), decimal digits.
    return category[0] in "LM" or category == "Nd" or char in USERNAME_PUNCTUATION


def check_password(password: object) -> str:
    """The password as it is hashed (NFKC), or InvalidValue."""
    if not isinstance(password, str):
        raise InvalidValue("a password is text", param="password")
    normalized = unicodedata.normalize("NFKC", password)
    if len(normalized) < PASSWORD_MIN:
        raise InvalidValue(f"a password has at least {PASSWORD_MIN} characters", param="password")
    if len(normalized) > PASSWORD_MAX:
        raise InvalidValue(f"a password has at most {PASSWORD_MAX} characters", param="password")
    return normalized


class Passwords:
    """argon2id hashing. The default parameters are argon2-cffi's (RFC 9106's low-memory profile)."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self.hasher = hasher or PasswordHasher()
        if self.hasher.type is not Type.ID:
            raise ValueError("passwords are hashed with argon2id")

    def hash(self, password: str) -> str:
        return self.hasher.hash(check_password(password))

    def verify(self, password_hash: str, password: str) -> bool:
        """Whether `password` matches; a malformed password or hash is simply no match."""
        if not isinstance(password, str) or len(password) > 4 * PASSWORD_MAX:
            return False
        try:
            return self.hasher.verify(password_hash, unicodedata.normalize("NFKC", password))
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self.hasher.check_needs_rehash(password_hash)

    def verify_nothing(self, password: str) -> None:
        """Spend the time a real check takes, so an unknown username answers as slowly as a known one."""
        self.verify(self._dummy_hash, password)

    @cached_property
    def _dummy_hash(self) -> str:
        return self.hasher.hash(secrets.token_urlsafe(16))


def new_token() -> str:
    """A login session or CSRF token: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def shown_prefix(api_key: str) -> str:
    return api_key[:SHOWN_PREFIX_CHARS]


def digest(token: str) -> str:
    """How a token is stored and looked up: sha256, hex."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def matches(token: str, stored_digest: str) -> bool:
    return hmac.compare_digest(digest(token), stored_digest)
