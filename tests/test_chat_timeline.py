"""Chat transcripts → timeline lines: Slack exports, plain formats, days, zones and garbage."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from wiki.chat_timeline import (
    MAX_BYTES,
    Line,
    TranscriptError,
    parse_transcript,
    parse_zone,
    to_markdown_table,
)

DAY = "2023-06-14"


def ts(hour: int, minute: int, second: int = 0, micro: int = 0) -> str:
    """A Slack ``ts`` for a UTC time on DAY."""
    when = datetime(2023, 6, 14, hour, minute, second, tzinfo=UTC)
    return f"{int(when.timestamp())}.{micro:06d}"


def rows(lines: list[Line]) -> list[tuple[str, str, str]]:
    return [(line.display_time, line.author, line.text) for line in lines]


# --------------------------------------------------------------------------------------------
# Slack exports

SLACK_EXPORT = [
    {"type": "message", "subtype": "channel_join", "ts": ts(13, 58), "user": "U1",
     "text": "<@U1> has joined the channel"},
    {"type": "message", "ts": ts(14, 2, 11), "user": "U1", "text": "restarted the pods",
     "user_profile": {"real_name": "Alice Smith", "display_name": "alice"}},
    {"type": "message", "ts": ts(14, 1), "user": "U2",
     "text": "<!here> checkout is down, <@U1> can you look? see "
             "<https://grafana.example/d/1|the graph> &amp; <#C9|incidents>",
     "user_profile": {"real_name": "Bob Jones"}, "thread_ts": ts(14, 1),
     "reply_count": 1},
    {"type": "message", "ts": ts(14, 3), "user": "U1", "text": "on it <@U2>",
     "thread_ts": ts(14, 1), "parent_user_id": "U2"},
    {"type": "message", "subtype": "bot_message", "ts": ts(14, 0), "bot_id": "B1",
     "username": "PagerDuty", "text": "",
     "attachments": [{"fallback": "Triggered: checkout 5xx > 5%", "color": "red"}]},
    {"type": "message", "subtype": "channel_topic", "ts": ts(14, 4), "user": "U2",
     "text": "set the channel topic: SEV2 checkout"},
    {"type": "message", "subtype": "channel_leave", "ts": ts(15, 0), "user": "U3",
     "text": "<@U3> has left the channel"},
    {"type": "message", "ts": ts(14, 5), "user": "U4", "text": "<@U404> and <@U5|eve> ping"},
    {"type": "message", "ts": ts(14, 6), "user": "U2", "text": "   "},
    {"type": "message", "subtype": "tombstone", "ts": ts(14, 7),
     "text": "This message was deleted."},
]


def test_slack_export_in_time_order_with_names_and_mentions():
    lines = parse_transcript(json.dumps(SLACK_EXPORT), tz="UTC")
    assert rows(lines) == [
        ("14:00", "PagerDuty", "Triggered: checkout 5xx > 5%"),
        ("14:01", "Bob Jones", "@here checkout is down, @Alice Smith can you look? see "
                               "[the graph](https://grafana.example/d/1) & #incidents"),
        ("14:02", "Alice Smith", "restarted the pods"),
        ("14:03", "Alice Smith", "on it @Bob Jones"),
        ("14:04", "Bob Jones", "set the channel topic: SEV2 checkout"),
        ("14:05", "U4", "@U404 and @eve ping"),
    ]
    assert lines[2].time == datetime(2023, 6, 14, 14, 2, 11, tzinfo=UTC)
    assert [line.in_thread for line in lines] == [False, False, False, True, False, False]
    assert lines[1].raw.startswith("<!here> checkout is down, <@U1>")


def test_slack_times_are_shown_in_the_requested_zone():
    lines = parse_transcript(json.dumps(SLACK_EXPORT), tz="Europe/Berlin")
    assert lines[0].display_time == "16:00"  # CEST, UTC+2
    assert lines[0].time.utcoffset() == timedelta(hours=2)
    assert lines[0].to_json()["time"] == "2023-06-14T16:00:00+02:00"


def test_slack_api_shape_with_users_and_a_day_that_is_ignored():
    data = {"ok": True, "users": [{"id": "U7", "name": "carol", "profile": {"real_name": "Carol"}}],
            "messages": [{"ts": ts(9, 30), "user": "U7", "text": "hi <@U7>"},
                         {"ts": ts(9, 30), "user": "U7", "text": "hi <@U7>"}]}  # duplicate
    lines = parse_transcript(json.dumps(data), day="2020-01-01")
    assert rows(lines) == [("09:30", "Carol", "hi @Carol")]
    assert lines[0].time.date() == date(2023, 6, 14)


def test_slack_files_and_several_days_as_a_list_of_lists():
    day1 = [{"ts": ts(10, 0), "user": "U1", "text": "",
             "files": [{"name": "graph.png", "title": "p99 graph"}]}]
    day2 = [{"ts": str(float(ts(10, 0)) + 86400), "username": "deploybot", "text": "deployed"}]
    lines = parse_transcript(json.dumps([day1, day2]))
    assert rows(lines) == [("10:00", "U1", "[file: p99 graph]"), ("10:00", "deploybot", "deployed")]
    assert lines[1].time.date() == date(2023, 6, 15)


def test_slack_messages_with_bad_fields_do_not_crash():
    data = [{"ts": "not a number", "user": 5, "text": "no time"},
            {"ts": "1e30", "text": "far future"},
            {"ts": ts(1, 0), "text": 42, "user_profile": "x", "attachments": "y", "files": [3]},
            {"ts": ts(1, 1)}, "a string", None]
    lines = parse_transcript(json.dumps(data))
    assert rows(lines) == [("", "", "no time"), ("", "", "far future")]


def test_json_that_is_no_slack_export_is_read_as_text():
    assert rows(parse_transcript('{"foo": 1}')) == [("", "", '{"foo": 1}')]
    assert parse_transcript("[]") == []


# --------------------------------------------------------------------------------------------
# Plain text


@pytest.mark.parametrize("text, expected", [
    ("14:02 alice: restarted the pods", ("14:02", "alice", "restarted the pods")),
    ("[14:02] alice: restarted the pods", ("14:02", "alice", "restarted the pods")),
    ("(14:02:59) @alice.smith: restarted", ("14:02", "alice.smith", "restarted")),
    ("[14:02:11] <alice> restarted", ("14:02", "alice", "restarted")),
    ("2023-06-14 14:02:11 alice: restarted", ("14:02", "alice", "restarted")),
    ("[2023-06-14 14:02] Alice Smith: restarted", ("14:02", "Alice Smith", "restarted")),
    ("2023-06-14T14:02:11.123Z alice: iso", ("14:02", "alice", "iso")),
    ("2023-06-14T16:02:11+02:00 alice: offset", ("14:02", "alice", "offset")),
    ("2:02 PM alice: afternoon", ("14:02", "alice", "afternoon")),
    ("12:15 am bob: after midnight", ("00:15", "bob", "after midnight")),
    ("14:02 - deploy started", ("14:02", "", "deploy started")),
    ("14:02 see https://example.org/x for details",
     ("14:02", "", "see https://example.org/x for details")),
])
def test_plain_formats(text, expected):
    lines = parse_transcript(text, day=DAY, tz="UTC")
    assert rows(lines) == [expected]
    assert lines[0].time.date() == date(2023, 6, 14)
    assert lines[0].raw == text


def test_continuation_lines_join_the_previous_message():
    text = "14:02 alice: restarted the pods\nand scaled up to 12\n\n14:05 bob: ok\n  indented too"
    lines = parse_transcript(text, day=DAY)
    assert rows(lines) == [("14:02", "alice", "restarted the pods\nand scaled up to 12"),
                           ("14:05", "bob", "ok\nindented too")]
    assert lines[0].raw == "14:02 alice: restarted the pods\nand scaled up to 12"


def test_slack_copy_paste_with_headers_and_bare_times():
    text = """Wednesday, June 14th
Alice Smith  2:02 PM
restarted the pods
2:03
and scaled up
bob  [2:10 PM]
ack
restarted at 2:15 PM
"""
    lines = parse_transcript(text, day="2023-01-01", tz="UTC")
    assert rows(lines) == [
        ("14:02", "Alice Smith", "restarted the pods"),
        ("14:03", "Alice Smith", "and scaled up"),
        ("14:10", "bob", "ack\nrestarted at 2:15 PM"),
    ]
    assert lines[0].time.date() == date(2023, 6, 14)  # from the separator, year from `day`


@pytest.mark.parametrize("separator, expected", [
    ("June 14th, 2022", date(2022, 6, 14)),
    ("Tue 14 Jun", date(2023, 6, 14)),
    ("--- 2023-06-20 ---", date(2023, 6, 20)),
    ("Today", date(2023, 6, 14)),
    ("Yesterday", date(2023, 6, 13)),
])
def test_date_separators(separator, expected):
    lines = parse_transcript(f"{separator}\n09:00 alice: hi", day=DAY)
    assert lines[0].time.date() == expected


def test_times_roll_over_midnight_and_dates_reset_the_day():
    text = "23:58 alice: late\n00:03 bob: after midnight\n00:01 carol: out of order\n" \
           "2023-07-01 08:00 dave: dated\n09:00 eve: same day as dave"
    lines = parse_transcript(text, day=DAY)
    assert [line.time.isoformat() for line in lines] == [
        "2023-06-14T23:58:00+00:00", "2023-06-15T00:03:00+00:00", "2023-06-15T00:01:00+00:00",
        "2023-07-01T08:00:00+00:00", "2023-07-01T09:00:00+00:00"]


def test_day_and_zone_apply_to_times_without_them():
    (line,) = parse_transcript("14:02 alice: hi", day=date(2023, 12, 1), tz="Europe/Berlin")
    assert line.time.isoformat() == "2023-12-01T14:02:00+01:00"  # CET in winter
    (line,) = parse_transcript("14:02 alice: hi", day=DAY, tz="+05:30")
    assert line.time.utcoffset() == timedelta(hours=5, minutes=30)
    (line,) = parse_transcript("2023-06-14 12:00:00 UTC alice: hi", tz="America/New_York")
    assert line.display_time == "08:00"


def test_the_day_defaults_to_today_in_the_zone():
    (line,) = parse_transcript("14:02 alice: hi", tz="UTC")
    assert line.time.date() == datetime.now(UTC).date() or \
        line.time.date() == (datetime.now(UTC) - timedelta(minutes=1)).date()


def test_lines_without_any_time_stand_alone():
    assert rows(parse_transcript("random text\nno times here")) == [
        ("", "", "random text"), ("", "", "no times here")]


def test_crlf_and_a_bom():
    lines = parse_transcript("\ufeff14:02 alice: a\r\nmore\r\n14:03 bob: b\r\n", day=DAY)
    assert rows(lines) == [("14:02", "alice", "a\nmore"), ("14:03", "bob", "b")]


# --------------------------------------------------------------------------------------------
# Zones and days


@pytest.mark.parametrize("value, offset", [
    ("UTC", timedelta(0)), ("", timedelta(0)), (None, timedelta(0)), ("Z", timedelta(0)),
    ("+02:00", timedelta(hours=2)), ("UTC-5", timedelta(hours=-5)),
    ("-0330", timedelta(hours=-3, minutes=-30)),
    (timezone(timedelta(hours=1)), timedelta(hours=1)),
])
def test_parse_zone(value, offset):
    assert parse_zone(value).utcoffset(datetime(2023, 1, 1)) == offset


@pytest.mark.parametrize("value", ["Mars/Olympus", "../../etc/passwd", "+25:00", "UTC+99"])
def test_unknown_zones_are_refused_clearly(value):
    with pytest.raises(TranscriptError, match="time zone|UTC offset"):
        parse_transcript("14:02 a: b", tz=value)


def test_a_bad_day_is_refused_clearly():
    with pytest.raises(TranscriptError, match="is not a date like 2023-06-14"):
        parse_transcript("14:02 a: b", day="14/06/2023")


# --------------------------------------------------------------------------------------------
# Garbage


@pytest.mark.parametrize("text", ["", "   \n\n", b"", "\ufeff"])
def test_empty_input_gives_no_lines(text):
    assert parse_transcript(text) == []


@pytest.mark.parametrize("data", [
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)),
    "text with a NUL \x00 byte",
    "".join(chr(c) for c in range(1, 32)) * 20,
])
def test_binary_input_is_refused(data):
    with pytest.raises(TranscriptError, match="binary file"):
        parse_transcript(data)


def test_five_megabytes_is_refused_with_the_limit():
    big = ("14:02 alice: " + "x" * 80 + "\n") * (5 * 1024 * 1024 // 94)
    with pytest.raises(TranscriptError, match=f"limit is {MAX_BYTES:,} bytes") as info:
        parse_transcript(big)
    assert info.value.status == 413
    with pytest.raises(TranscriptError):
        parse_transcript(big.encode())


def test_bytes_are_decoded_and_bad_utf8_replaced():
    assert rows(parse_transcript("14:02 zoë: hé".encode() + b"\xff", day=DAY)) == [
        ("14:02", "zoë", "hé\ufffd")]


def test_deeply_nested_json():
    with pytest.raises(TranscriptError, match="nested too deeply"):
        parse_transcript("[" * 100_000 + "]" * 100_000)


def test_naughty_strings_never_crash(naughty_strings):
    for s in naughty_strings:
        for variant in (s, f"14:02 {s}: {s}", f"[{s}] {s}", f"{s}  2:02 PM\n{s}"):
            try:
                lines = parse_transcript(variant, day=DAY, tz="UTC")
            except TranscriptError:
                continue
            assert all(isinstance(line, Line) for line in lines)


# --------------------------------------------------------------------------------------------
# Output


def test_markdown_table_escapes_pipes_and_joins_lines():
    lines = parse_transcript("14:02 alice: a | b\nsecond line\n14:03 - no author", day=DAY)
    assert to_markdown_table(lines) == (
        "| Time | Event |\n|---|---|\n"
        "| 14:02 | alice: a \\| b second line |\n"
        "| 14:03 | no author |\n")


def test_to_json():
    (line,) = parse_transcript("14:02 alice: hi", day=DAY)
    assert line.to_json() == {"time": "2023-06-14T14:02:00+00:00", "date": "2023-06-14",
                              "display_time": "14:02", "author": "alice", "text": "hi",
                              "in_thread": False}
