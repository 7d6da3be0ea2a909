"""Every request and response body of the HTTP API, declared once, by area. Import from here."""

from mingyan.api.schemas.accounts import *  # noqa: F403
from mingyan.api.schemas.documents import *  # noqa: F403
from mingyan.api.schemas.embeddings import *  # noqa: F403
from mingyan.api.schemas.history import *  # noqa: F403
from mingyan.api.schemas.openai import *  # noqa: F403
from mingyan.api.schemas.tools import *  # noqa: F403
