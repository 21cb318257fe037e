"""API tokens for bots and scripts: ``wiki token create NAME`` prints one, once. No Flask.

A token is ``pmw_`` followed by 43 random URL-safe characters (256 bits from :mod:`secrets`).
Only its SHA-256 hash is kept, in ``<DATA_DIR>/tokens.json`` (mode 0600), with its name, its
first characters (to recognise it in ``wiki token list``) and when it was made: a copy of the
file does not give anyone a working token. A high-entropy secret needs no slow password hash;
the hash of a presented token is compared with each stored one by :func:`secrets.compare_digest`.

While no token exists, API writes are open (a single-user install); once one exists, every
``POST``/``PUT`` to the documents API must carry ``Authorization: Bearer <token>``
(:mod:`wiki.views.api`). Reads stay open.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import tempfile
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

PREFIX = "pmw_"
FILE_NAME = "tokens.json"
#: Characters of a token kept in clear to tell tokens apart (prefix included).
SHOWN_CHARS = 10
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class TokenError(ValueError):
    """A token name that is taken or malformed, or an unknown one (the message says which)."""


@dataclass(frozen=True)
class Token:
    name: str
    hash: str  #: SHA-256 of the token, hex
    start: str  #: its first characters, e.g. ``pmw_Ab3d9Z``
    created: str  #: ISO 8601, UTC


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenStore:
    """The tokens of a wiki, in ``<data dir>/tokens.json``; re-read when the file changes (so a
    token created or revoked by the CLI counts at once in a running server)."""

    def __init__(self, data_dir: Path | str):
        self.path = Path(data_dir) / FILE_NAME
        self._lock = threading.Lock()
        self._cache: tuple[tuple[int, int] | None, list[Token]] = (None, [])

    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return st.st_mtime_ns, st.st_size

    def tokens(self) -> list[Token]:
        stamp = self._stamp()
        with self._lock:
            if stamp is not None and self._cache[0] == stamp:
                return list(self._cache[1])
            tokens = self._read() if stamp is not None else []
            self._cache = (stamp, tokens)
            return list(tokens)

    def _read(self) -> list[Token]:
        try:
            data = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            # Fail closed: a broken file must not open the API to everyone.
            raise TokenError(f"{self.path} cannot be read ({exc}); fix or delete it.") from exc
        return [Token(**{k: str(item.get(k, "")) for k in ("name", "hash", "start", "created")})
                for item in data.get("tokens", []) if isinstance(item, dict)]

    def _write(self, tokens: list[Token]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps({"tokens": [asdict(t) for t in tokens]}, indent=2) + "\n"
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".tokens-", suffix=".tmp")
        try:
            os.chmod(tmp, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(data)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        with self._lock:
            self._cache = (None, [])

    # -- verbs -------------------------------------------------------------------------------

    def create(self, name: str) -> tuple[Token, str]:
        """A new token named ``name``: its record and the token itself (shown once)."""
        name = name.strip()
        if not NAME_RE.match(name):
            raise TokenError("A token name is 1–64 letters, digits, '.', '_' or '-', starting "
                             "with a letter or digit (e.g. slack-bot).")
        tokens = self.tokens()
        if any(t.name == name for t in tokens):
            raise TokenError(f"There is already a token named {name}; revoke it first or pick "
                             "another name.")
        secret = PREFIX + secrets.token_urlsafe(32)
        token = Token(name=name, hash=hash_token(secret), start=secret[:SHOWN_CHARS],
                      created=datetime.now(UTC).replace(microsecond=0).isoformat())
        self._write([*tokens, token])
        return token, secret

    def revoke(self, name: str) -> Token:
        tokens = self.tokens()
        kept = [t for t in tokens if t.name != name]
        if len(kept) == len(tokens):
            raise TokenError(f"There is no token named {name}.")
        self._write(kept)
        return next(t for t in tokens if t.name == name)

    def enabled(self) -> bool:
        """Whether writes need a token (at least one exists)."""
        return bool(self.tokens())

    def verify(self, presented: str | None) -> Token | None:
        """The token ``presented`` is, or None."""
        if not presented:
            return None
        digest = hash_token(presented)
        found = None
        for token in self.tokens():  # every one compared: the time does not say which matched
            if secrets.compare_digest(digest, token.hash):
                found = token
        return found


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header."""
    scheme, _, value = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


def init_app(app) -> None:
    """Give the app its :class:`TokenStore` (``app.extensions["tokens"]``)."""
    app.extensions["tokens"] = TokenStore(app.config["DATA_DIR"])
