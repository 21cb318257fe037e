"""Settings, read from environment variables.

Every setting lives in ``SETTINGS``: its environment variable, default and meaning. The README's
configuration table is checked against this table by ``tests/test_docs.py``, so a setting cannot
be added without being documented.
"""

from __future__ import annotations

import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

#: Where the repository's top-level folders are when running from a checkout (editable install).
SOURCE_ROOT = Path(__file__).resolve().parent.parent
#: Where a regular (non-editable) install puts ``static/`` and the demo ``content/``.
SHARE_ROOT = Path(sys.prefix) / "share" / "postmortem-wiki"


@dataclass(frozen=True)
class Setting:
    env: str
    key: str
    default: object
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("WIKI_CONTENT_DIR", "CONTENT_DIR", "./content",
            "Folder holding `postmortems/` and `signatures/` (the source of truth). "
            "Falls back to the bundled demo content when `./content` does not exist."),
    Setting("WIKI_DATA_DIR", "DATA_DIR", "./.wiki-data",
            "Folder for derived data: the search index, the SQLite file and revisions."),
    Setting("DATABASE_URL", "DATABASE_URL", None,
            "SQLAlchemy URL of the metadata database. Default: SQLite file `wiki.db` in the data "
            "dir. `postgresql+psycopg://user:pass@host/db` also works."),
    Setting("WIKI_SECRET_KEY", "SECRET_KEY", None,
            "Key signing sessions and CSRF tokens. Default: a random key per start (forms open "
            "across a restart then need a reload). Set it in production."),
    Setting("WIKI_STATIC_DIR", "STATIC_DIR", None,
            "Folder of CSS/JS/images. Default: the repository's `static/` or the installed copy."),
    Setting("WIKI_ROOT_CAUSE_CATEGORIES", "ROOT_CAUSE_CATEGORIES",
            "config-change,deploy,capacity,dependency,hardware,data-corruption,time,security,unknown",
            "Comma-separated vocabulary for a postmortem's `root_cause_category`."),
    Setting("WIKI_DETECTION_METHODS", "DETECTION_METHODS",
            "alert,customer-report,engineer-noticed,automated-test,other",
            "Comma-separated vocabulary for a postmortem's `detection`."),
    Setting("WIKI_MAX_FILE_BYTES", "MAX_FILE_BYTES", "2000000",
            "Content files larger than this are reported as problems and not loaded."),
    Setting("WIKI_HISTORY", "HISTORY", "auto",
            "Where revisions go: `auto` (git commits when `content/` is in a git repository, "
            "else the data dir), `git`, or `files` (always the data dir)."),
    Setting("WIKI_AUTH_HEADER", "AUTH_HEADER", None,
            "Header in which a trusted sign-in proxy (oauth2-proxy, an SSO gateway) names the "
            "signed-in person, e.g. `X-Forwarded-Email`: it becomes the author of their "
            "revisions, and browser writes without it get 401. Unset: writes are open and "
            "people type their name."),
    Setting("WIKI_GIT_AUTHOR", "GIT_AUTHOR", "Postmortem Wiki <wiki@localhost>",
            "Author of revisions when nobody is signed in, and committer of the wiki's commits."),
    Setting("WIKI_HINTS_FILE", "HINTS_FILE", None,
            "YAML file of blameless writing hints (phrases that blame people, a suggestion for "
            "each). Default: the bundled `wiki/data/blameless.yml`; copy it to start your own."),
    Setting("WIKI_MAX_UPLOAD_BYTES", "MAX_UPLOAD_BYTES", "5242880",
            "Largest image the editor accepts (PNG, JPEG, GIF or WebP; SVG is refused)."),
    Setting("WIKI_MATCH_MAX_BYTES", "MATCH_MAX_BYTES", "5242880",
            "Largest paste \"Have we seen this?\" and `POST /api/v1/match` accept, in bytes; "
            "a larger one is refused with 413."),
    Setting("WIKI_MAX_REQUEST_BYTES", "MAX_REQUEST_BYTES", "26214400",
            "Requests larger than this many bytes are refused with 413 and a message saying so "
            "(editor saves, uploads, API writes); the editor keeps the text as a browser draft."),
    Setting("WIKI_BASE_URL", "BASE_URL", "",
            "Public URL of the wiki (e.g. `https://wiki.example.com`), used in links sent to chat. "
            "Default: taken from each request."),
    # -- chat and API tokens (issue 7) ------------------------------------------------------
    Setting("WIKI_LINK_DOMAINS", "LINK_DOMAINS", "",
            "Other host names of this wiki (comma-separated) whose links unfurl in Slack and "
            "get oEmbed answers, besides the host of `WIKI_BASE_URL` and of the request."),
    Setting("SLACK_SIGNING_SECRET", "SLACK_SIGNING_SECRET", None,
            "The Slack app's signing secret. Turns on `/slack/commands`, `/slack/events` and "
            "`/slack/interactive` (404 without it); every request must be signed with it."),
    Setting("SLACK_BOT_TOKEN", "SLACK_BOT_TOKEN", None,
            "The Slack app's bot token (`xoxb-…`), used to unfurl links (`chat.unfurl`)."),
    Setting("SLACK_API_URL", "SLACK_API_URL", "https://slack.com/api/",
            "Base URL of the Slack Web API (tests point it at a local fake server)."),
    Setting("WIKI_SLASH_COMMAND", "SLASH_COMMAND", "/pm",
            "Name of the Slack slash command, as in the app's manifest."),
    Setting("WIKI_WEBHOOK_TOKEN", "WEBHOOK_TOKEN", None,
            "Token(s) (comma-separated) that `POST /hooks/chat` accepts from Mattermost or "
            "Rocket.Chat; the webhook answers 404 without one."),
    Setting("WIKI_WEBHOOK_CHANNEL_URL", "WEBHOOK_CHANNEL_URL", "",
            "Link to a chat channel, for the `chat_links` of drafts started with `new` through "
            "the webhook: a template with `{team}`, `{channel}`, `{channel_id}`. Default: "
            "`~channel-name`."),
)


def _find_default_dir(name: str) -> Path:
    """Top-level ``static/`` or ``content/``: the checkout's, else the installed share copy."""
    for root in (SOURCE_ROOT, SHARE_ROOT):
        if (root / name).is_dir():
            return root / name
    return SOURCE_ROOT / name


def _listify(value: object) -> tuple[str, ...]:
    if isinstance(value, (list, tuple)):
        return tuple(str(v).strip() for v in value if str(v).strip())
    return tuple(v.strip() for v in str(value).split(",") if v.strip())


def load(overrides: dict | None = None, environ: dict | None = None) -> dict:
    """Build the configuration dict from defaults, the environment and explicit overrides."""
    environ = os.environ if environ is None else environ
    overrides = dict(overrides or {})
    config: dict = {}
    for setting in SETTINGS:
        if setting.key in overrides:
            value = overrides.pop(setting.key)
        else:
            value = environ.get(setting.env, setting.default)
        config[setting.key] = value

    content = config["CONTENT_DIR"]
    if (content == "./content" and not Path("content").is_dir()
            and "WIKI_CONTENT_DIR" not in environ):
        content = _find_default_dir("content")
    config["CONTENT_DIR"] = Path(content).resolve()
    config["DATA_DIR"] = Path(config["DATA_DIR"]).resolve()
    config["STATIC_DIR"] = Path(config["STATIC_DIR"] or _find_default_dir("static")).resolve()
    if not config["DATABASE_URL"]:
        config["DATABASE_URL"] = f"sqlite:///{config['DATA_DIR'] / 'wiki.db'}"
    if not config["SECRET_KEY"]:
        config["SECRET_KEY"] = secrets.token_hex(32)
    config["ROOT_CAUSE_CATEGORIES"] = _listify(config["ROOT_CAUSE_CATEGORIES"])
    config["DETECTION_METHODS"] = _listify(config["DETECTION_METHODS"])
    config["MAX_FILE_BYTES"] = int(config["MAX_FILE_BYTES"])
    config["MATCH_MAX_BYTES"] = int(config["MATCH_MAX_BYTES"])
    config["MAX_UPLOAD_BYTES"] = int(config["MAX_UPLOAD_BYTES"])
    config["MAX_REQUEST_BYTES"] = int(config["MAX_REQUEST_BYTES"])
    config["BASE_URL"] = str(config["BASE_URL"] or "").rstrip("/")
    config["LINK_DOMAINS"] = _listify(config["LINK_DOMAINS"] or "")  # chat (issue 7)
    config.update(overrides)  # anything else (e.g. TESTING) passes through untouched
    return config
