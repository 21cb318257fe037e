"""Chat transcripts → timeline lines: who said what, when.

:func:`parse_transcript` accepts

* a **Slack channel export** (one day's JSON file: a list of messages, or ``{"messages": […]}``
  as the API returns it, optionally with ``"users": […]`` as in ``users.json``): ``ts`` epoch
  strings, authors from ``user_profile``/``bot_profile``/``username``, mentions such as
  ``<@U123>`` resolved to names where the export knows them, links and entities unescaped, join
  and leave notices and other housekeeping subtypes skipped, thread replies kept in time order;
* **plain lines**: ``14:02 alice: restarted the pods``, ``[14:02] alice: …``,
  ``[14:02:11] <alice> …`` (IRC), ``2023-06-14 14:02:11 alice: …``, ISO 8601 timestamps with an
  offset or ``Z``, ``2:02 PM alice: …``;
* **Slack copy-paste**: ``Alice Smith  2:02 PM`` (or ``[2:02 PM]``) on one line and the message
  on the next lines; a line holding only a time starts the same author's next message; date
  separators (``Wednesday, June 14th``, ``Today``) set the day.

Lines that belong to no header continue the previous message. Times without a date fall on
``day`` (default: today in ``tz``) and roll over to the next day when the clock goes back by
more than an hour (23:58 → 00:03). Every time is returned aware, in ``tz``.

Bad input (empty, binary, oversized, not a transcript) gives a clear :class:`TranscriptError`
or an empty list, never another exception. No Flask here.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["Line", "TranscriptError", "MAX_BYTES", "MAX_MESSAGES", "parse_transcript",
           "parse_zone", "parse_day", "to_markdown_table"]

#: Largest transcript accepted (UTF-8 bytes): a busy incident channel's day is far below this.
MAX_BYTES = 4_000_000
#: Most messages one transcript may give.
MAX_MESSAGES = 10_000


class TranscriptError(Exception):
    """A transcript, day or time zone that cannot be used; the message says why. ``status``
    is the HTTP status a view should answer (413 for a transcript over the size limit)."""

    def __init__(self, message: str, status: int = 400):
        self.message, self.status = message, status
        super().__init__(message)


@dataclass(frozen=True)
class Line:
    time: datetime | None  #: aware, in the requested time zone; None when the line had none
    author: str
    text: str
    raw: str  #: the source: the line(s) as pasted, or the Slack message's original text
    in_thread: bool = False  #: a Slack thread reply

    @property
    def display_time(self) -> str:
        return self.time.strftime("%H:%M") if self.time else ""

    def to_json(self) -> dict:
        return {
            "time": self.time.isoformat() if self.time else None,
            "date": self.time.date().isoformat() if self.time else None,
            "display_time": self.display_time,
            "author": self.author,
            "text": self.text,
            "in_thread": self.in_thread,
        }


# --------------------------------------------------------------------------------------------
# Time zones and days

_OFFSET_RE = re.compile(r"^(?:UTC|GMT)?\s*([+-])(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE)


def parse_zone(value: str | tzinfo | None) -> tzinfo:
    """``"Europe/Berlin"``, ``"UTC"``, ``"+02:00"``, ``"UTC-5"`` (or a tzinfo) → a tzinfo."""
    if isinstance(value, tzinfo):
        return value
    name = (value or "").strip()
    if not name or name.upper() in ("UTC", "Z", "GMT", "ETC/UTC"):
        return UTC
    m = _OFFSET_RE.match(name)
    if m:
        hours, minutes = int(m.group(2)), int(m.group(3) or 0)
        if hours > 14 or minutes > 59:
            raise TranscriptError(f"{name!r} is not a UTC offset (use e.g. +02:00)")
        delta = timedelta(hours=hours, minutes=minutes)
        return timezone(-delta if m.group(1) == "-" else delta)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise TranscriptError(f"Unknown time zone {name!r}: use a name like Europe/Berlin or "
                              f"an offset like +02:00") from None


def parse_day(value: date | str | None, zone: tzinfo = UTC) -> date:
    """A date, ``"2023-06-14"`` or ``None`` (today in ``zone``)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = (value or "").strip()
    if not text:
        return datetime.now(zone).date()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise TranscriptError(f"{text!r} is not a date like 2023-06-14") from None


# --------------------------------------------------------------------------------------------
# Entry point


def parse_transcript(text: str | bytes, day: date | str | None = None,
                     tz: str | tzinfo | None = "UTC", max_bytes: int = MAX_BYTES) -> list[Line]:
    """Parse a pasted chat transcript into :class:`Line` objects, in time order for Slack
    exports and in pasted order otherwise."""
    zone = parse_zone(tz)
    the_day = parse_day(day, zone)
    text = _decode(text, max_bytes)
    if not text.strip():
        return []
    stripped = text.lstrip()
    lines: list[Line] | None = None
    if stripped[:1] in "[{":
        try:
            data = json.loads(stripped)
        except ValueError:  # "[14:02] alice: …" starts with a bracket too
            data = None
        except RecursionError:
            raise TranscriptError("The JSON is nested too deeply to be a Slack export.") from None
        if data is not None:
            lines = _parse_slack(data, zone)
    if lines is None:
        lines = _parse_plain(text, the_day, zone)
    if len(lines) > MAX_MESSAGES:
        raise TranscriptError(f"The transcript has {len(lines):,} messages; the limit is "
                              f"{MAX_MESSAGES:,}. Paste the part around the incident.", 413)
    return lines


def _decode(text: str | bytes, max_bytes: int) -> str:
    if isinstance(text, bytes):
        size = len(text)
        if size > max_bytes:
            raise _too_large(size, max_bytes)
        if b"\x00" in text[:65536]:
            raise TranscriptError("This looks like a binary file, not a chat transcript.")
        text = text.decode("utf-8", "replace")
    elif not isinstance(text, str):
        raise TranscriptError("The transcript must be text.")
    else:
        size = len(text) if len(text) > max_bytes else len(text.encode("utf-8", "surrogatepass"))
        if size > max_bytes:
            raise _too_large(size, max_bytes)
    text = text.removeprefix("\ufeff")
    sample = text[:65536]
    controls = sum(1 for c in sample if (c < " " and c not in "\t\n\r") or c == "\ufffd")
    if "\x00" in sample or controls > max(8, len(sample) // 20):
        raise TranscriptError("This looks like a binary file, not a chat transcript.")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _too_large(size: int, limit: int) -> TranscriptError:
    return TranscriptError(f"The transcript is {size:,} bytes; the limit is {limit:,} bytes. "
                           f"Paste the part around the incident.", 413)


# --------------------------------------------------------------------------------------------
# Slack exports

#: Housekeeping messages that are no part of what happened.
SKIPPED_SUBTYPES = frozenset({
    "channel_join", "channel_leave", "group_join", "group_leave", "channel_purpose",
    "group_purpose", "channel_name", "group_name", "channel_archive", "channel_unarchive",
    "group_archive", "group_unarchive", "channel_convert_to_private", "channel_convert_to_public",
    "bot_add", "bot_remove", "bot_enable", "bot_disable", "pinned_item", "unpinned_item",
    "reminder_add", "reminder_delete", "message_deleted", "tombstone", "joiner_notification",
    "joiner_notification_for_inviter", "app_conversation_join", "app_conversation_leave",
    "ekm_access_denied", "sh_room_created", "huddle_thread", "channel_canvas_updated",
})
#: ``<@U123>``, ``<@U123|alice>``, ``<#C1|general>``, ``<!here>``, ``<!subteam^S1|@sre>``,
#: ``<https://x|label>``, ``<mailto:a@b|a@b>``.
_SLACK_TOKEN_RE = re.compile(r"<([@#!]?)([^<>|\n]*)(?:\|([^<>\n]*))?>")


def _messages(data) -> tuple[list[dict], list[dict]] | None:
    """The messages (and users, if any) of a Slack export, or None when this is no export."""
    users: list = []
    if isinstance(data, dict):
        users = data.get("users") if isinstance(data.get("users"), list) else []
        data = data.get("messages")
    if not isinstance(data, list):
        return None
    messages = []
    for item in data:
        if isinstance(item, list):  # several day files pasted as one list of lists
            messages.extend(m for m in item if isinstance(m, dict))
        elif isinstance(item, dict):
            messages.append(item)
    if data and not any("ts" in m for m in messages):
        return None
    return messages, [u for u in users if isinstance(u, dict)]


def _name_of(profile) -> str:
    if not isinstance(profile, dict):
        return ""
    for key in ("real_name", "display_name", "name"):
        value = profile.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def _user_names(messages: list[dict], users: list[dict]) -> dict[str, str]:
    names: dict[str, str] = {}
    for user in users:
        uid = user.get("id")
        name = _name_of(user.get("profile")) or _name_of(user)
        if isinstance(uid, str) and name:
            names[uid] = name
    for m in messages:
        uid = m.get("user")
        name = _name_of(m.get("user_profile"))
        if isinstance(uid, str) and name:
            names.setdefault(uid, name)
    return names


def _slack_text(text: str, names: dict[str, str]) -> str:
    def replace(m: re.Match) -> str:
        sigil, target, label = m.group(1), m.group(2), m.group(3)
        if sigil == "@":
            return "@" + (names.get(target) or (label or "").lstrip("@") or target)
        if sigil == "#":
            return "#" + (label or target)
        if sigil == "!":
            if label:
                return label
            word = target.split("^", 1)[0]
            return "@" + word if word in ("here", "channel", "everyone") else word
        if target.startswith("mailto:"):
            return label or target[len("mailto:"):]
        if label and label != target:
            return f"[{label}]({target})"
        return target

    return html.unescape(_SLACK_TOKEN_RE.sub(replace, text)).strip()


def _attachment_text(message: dict) -> str:
    parts = []
    for att in message.get("attachments") or []:
        if isinstance(att, dict):
            for key in ("fallback", "pretext", "title", "text"):
                value = att.get(key)
                if isinstance(value, str) and value.strip():
                    parts.append(value.strip())
                    break
    for f in message.get("files") or []:
        if isinstance(f, dict):
            name = f.get("title") or f.get("name")
            if isinstance(name, str) and name.strip():
                parts.append(f"[file: {name.strip()}]")
    return "\n".join(parts)


def _epoch(value) -> float | None:
    try:
        ts = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return ts if 0 <= ts < 253402300800 else None  # up to year 9999


def _parse_slack(data, zone: tzinfo) -> list[Line] | None:
    found = _messages(data)
    if found is None:
        return None
    messages, users = found
    names = _user_names(messages, users)
    out: list[tuple[float, int, Line]] = []
    seen: set = set()
    for n, m in enumerate(messages):
        if m.get("subtype") in SKIPPED_SUBTYPES or m.get("hidden"):
            continue
        ts = _epoch(m.get("ts"))
        raw = m.get("text") if isinstance(m.get("text"), str) else ""
        key = (m.get("ts"), m.get("user") or m.get("bot_id"), raw)
        if key in seen:
            continue
        seen.add(key)
        text = _slack_text(raw, names) or _slack_text(_attachment_text(m), names)
        if not text:
            continue
        uid = m.get("user")
        author = (
            _name_of(m.get("user_profile"))
            or (names.get(uid) if isinstance(uid, str) else "")
            or _name_of(m.get("bot_profile"))
            or (m.get("username") if isinstance(m.get("username"), str) else "")
            or (uid if isinstance(uid, str) else "")
        )
        thread = m.get("thread_ts")
        in_thread = thread is not None and str(thread) != str(m.get("ts"))
        try:
            # The fraction of a ``ts`` tells messages apart; it is no part of the time.
            when = datetime.fromtimestamp(int(ts), UTC).astimezone(zone) \
                if ts is not None else None
        except (OverflowError, ValueError, OSError):
            when = None
        out.append((ts if ts is not None else float("inf"), n,
                    Line(when, author.strip(), text, raw, in_thread)))
    out.sort(key=lambda item: (item[0], item[1]))
    return [line for _, _, line in out]


# --------------------------------------------------------------------------------------------
# Plain text

_TIME = (r"(?P<h>[01]?\d|2[0-3]):(?P<mi>[0-5]\d)(?::(?P<s>[0-5]\d)(?:[.,]\d{1,9})?)?"
         r"(?:\s*(?P<ampm>[AaPp]\.?[Mm]\.?)(?![\w]))?")
_DATE = r"(?P<date>\d{4}-\d{2}-\d{2}|\d{4}/\d{2}/\d{2})"
_ZONE = r"(?:\s*(?P<zone>Z|[+-]\d{2}:?\d{2}|UTC|GMT)(?![\w]))?"
#: A line starting with a timestamp: ``[2023-06-14 14:02:11 UTC] rest``, ``14:02 - rest``.
_STAMPED_RE = re.compile(
    rf"^\s*[\[(]?(?:{_DATE}(?:T|\s+|,\s*))?{_TIME}{_ZONE}[\])]?(?:\s*[-–—|:]\s*|\s+|$)"
    rf"(?P<rest>.*)$")
#: ``alice: text``, ``@alice.smith: text``, ``Alice Smith: text``, ``<alice> text``.
_AUTHOR_RE = re.compile(
    r"^(?:<(?P<irc>[^<>\s][^<>]{0,39})>\s*"
    r"|(?P<name>@?[^\W\d][\w.\-]{0,39}|(?:[^\W\d_][\w.\-']*\s){1,2}[^\W\d_][\w.\-']*):\s+)"
    r"(?P<text>.*)$")
#: Slack copy-paste header: ``Alice Smith  2:02 PM`` or ``alice [14:02]``, nothing after.
_HEADER_RE = re.compile(
    rf"^\s*(?P<name>[^\W\d][^\n:]{{0,60}}?)(?P<gap>\s+)(?P<open>[\[(])?{_TIME}[\])]?\s*$")
_MONTHS = {m: n for n, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}
_MONTH = r"(?P<month>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?"
_WEEKDAY = r"(?:(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*,?\s+)?"
_DATE_LINE_RES = (
    re.compile(rf"^{_WEEKDAY}{_MONTH}\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?(?:,?\s+(?P<y>\d{{4}}))?$",
               re.IGNORECASE),
    re.compile(rf"^{_WEEKDAY}(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\.?\s+{_MONTH}(?:,?\s+(?P<y>\d{{4}}))?$",
               re.IGNORECASE),
    re.compile(r"^(?P<iso>\d{4}-\d{2}-\d{2})$"),
    re.compile(r"^(?P<rel>today|yesterday)$", re.IGNORECASE),
)
#: Words that end a phrase rather than a name ("restarted at 2:02 PM" is no header).
_NOT_NAME_ENDINGS = frozenset({
    "at", "by", "on", "around", "after", "before", "until", "till", "since", "from", "to",
    "about", "approx", "approximately", "ca", "circa", "between", "and", "or", "is", "was",
    "were", "of", "in", "the", "a", "an", "as", "@",
})


@dataclass
class _Clock:
    hour: int
    minute: int
    second: int
    ampm: str | None  #: "a" or "p"


def _clock(m: re.Match) -> _Clock | None:
    hour, minute = int(m.group("h")), int(m.group("mi"))
    second = int(m.group("s") or 0)
    ampm = (m.group("ampm") or "").lower()[:1] or None
    if ampm:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if ampm == "p" else 0)
    return _Clock(hour, minute, second, ampm)


def _date_line(line: str, current: date, base: date) -> date | None:
    """A date separator line (``Wednesday, June 14th``, ``Today``) → its date."""
    text = line.strip().strip("-–—=*_ ").strip()
    if not text or len(text) > 40:
        return None
    for regex in _DATE_LINE_RES:
        m = regex.match(text)
        if not m:
            continue
        groups = m.groupdict()
        if groups.get("iso"):
            try:
                return date.fromisoformat(groups["iso"])
            except ValueError:
                return None
        if groups.get("rel"):
            return base if groups["rel"].lower() == "today" else base - timedelta(days=1)
        try:
            year = int(groups["y"]) if groups.get("y") else current.year
            return date(year, _MONTHS[groups["month"][:3].lower()], int(groups["d"]))
        except ValueError:
            return None
    return None


def _split_author(rest: str) -> tuple[str, str]:
    m = _AUTHOR_RE.match(rest)
    if not m:
        return "", rest.strip()
    author = (m.group("irc") or m.group("name") or "").strip()
    return author.lstrip("@") if m.group("name") else author, m.group("text").strip()


def _is_header(m: re.Match) -> bool:
    """Whether ``name time`` is a Slack header rather than a sentence ending in a time: the
    name is short and does not end like a phrase ("restarted at"), and the time is set apart
    (brackets, AM/PM, two spaces or a tab) or the name is capitalised ("Alice Smith 14:02")."""
    name = m.group("name").strip()
    words = name.split()
    if not 1 <= len(words) <= 4 or name.endswith((",", ".", ";", "!", "?")):
        return False
    if words[-1].lower() in _NOT_NAME_ENDINGS:
        return False
    set_apart = bool(m.group("open") or m.group("ampm")) or len(m.group("gap")) > 1 \
        or "\t" in m.group("gap")
    return set_apart or all(w[:1].isupper() for w in words)


class _PlainParser:
    def __init__(self, day: date, zone: tzinfo):
        self.base = day
        self.day = day
        self.zone = zone
        self.prev: datetime | None = None  #: previous time on the running day (rollover)
        self.twelve_hour = False
        self.messages: list[dict] = []
        self.current: dict | None = None
        self.last_author = ""

    def when(self, clock: _Clock, explicit_date: str | None, zone_text: str | None) -> datetime:
        if clock.ampm:
            self.twelve_hour = True
        elif self.twelve_hour and self.prev is not None and 1 <= clock.hour <= 12:
            # "2:03" after "2:02 PM" in a Slack copy: the half of the day closest after the last
            candidates = [(clock.hour % 12) + 12 * k for k in (0, 1)]
            prev_minutes = self.prev.hour * 60 + self.prev.minute
            clock.hour = min(candidates, key=lambda h: (h * 60 + clock.minute - prev_minutes)
                             % (24 * 60))
        if explicit_date:
            try:
                day = date.fromisoformat(explicit_date.replace("/", "-"))
            except ValueError:
                day = self.day
            self.day = day
        else:
            day = self.day
        zone = self.zone
        if zone_text:
            zone = parse_zone("UTC" if zone_text.upper() in ("Z", "GMT") else zone_text)
        when = datetime(day.year, day.month, day.day, clock.hour, clock.minute, clock.second,
                        tzinfo=zone)
        if not explicit_date and self.prev is not None and \
                when < self.prev - timedelta(hours=1):
            when += timedelta(days=1)  # past midnight
            self.day = when.date()
        self.prev = when
        return when.astimezone(self.zone)

    def start(self, when: datetime | None, author: str, text: str, raw: str) -> None:
        self.current = {"time": when, "author": author, "text": [text] if text else [],
                        "raw": [raw]}
        self.messages.append(self.current)
        if author:
            self.last_author = author

    def feed(self, line: str) -> None:
        if not line.strip():
            if self.current is not None:
                self.current["raw"].append(line)
            return
        new_day = _date_line(line, self.day, self.base)
        if new_day is not None:
            self.day, self.prev, self.current = new_day, None, None
            return
        m = _STAMPED_RE.match(line)
        if m and (clock := _clock(m)) is not None:
            when = self.when(clock, m.group("date"), m.group("zone"))
            if not m.group("rest").strip():
                # A time alone: the same author's next message (Slack copy-paste).
                self.start(when, self.last_author, "", line)
                return
            author, text = _split_author(m.group("rest"))
            self.start(when, author, text, line)
            return
        m = _HEADER_RE.match(line)
        if m and _is_header(m) and (clock := _clock(m)) is not None:
            self.start(self.when(clock, None, None), m.group("name").strip(), "", line)
            return
        if self.current is None:
            self.start(None, "", line.strip(), line)
            self.current = None  # untimed lines before any message stand alone
            return
        self.current["text"].append(line.strip())
        self.current["raw"].append(line)

    def lines(self) -> list[Line]:
        out = []
        for m in self.messages:
            text = "\n".join(m["text"]).strip()
            if not text:
                continue
            out.append(Line(m["time"], m["author"], text, "\n".join(m["raw"]).strip("\n")))
        return out


def _parse_plain(text: str, day: date, zone: tzinfo) -> list[Line]:
    parser = _PlainParser(day, zone)
    for line in text.split("\n"):
        parser.feed(line[:10_000])
    return parser.lines()


# --------------------------------------------------------------------------------------------
# Output


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("\\", "\\\\").replace("|", "\\|")


def to_markdown_table(lines: Iterable[Line]) -> str:
    """Lines as a Markdown table (``| Time | Event |``), for pasting into a postmortem."""
    rows = ["| Time | Event |", "|---|---|"]
    for line in lines:
        event = f"{line.author}: {line.text}" if line.author else line.text
        rows.append(f"| {_cell(line.display_time)} | {_cell(event)} |")
    return "\n".join(rows) + "\n"
