"""Blameless writing hints: every default rule, names as subjects, what is skipped, positions."""

from __future__ import annotations

import time

import pytest

from wiki import hints
from wiki.hints import find_hints, load_rules, names_from_front_matter


@pytest.fixture(scope="module")
def rules():
    return load_rules()


def found(text, rules, names=()):
    return [(h.rule, h.phrase) for h in find_hints(text, rules, names)]


@pytest.mark.parametrize("text, rule, phrase", [
    ("The outage was caused by human error.", "human-error", "human error"),
    ("Classic user error, really.", "human-error", "user error"),
    ("We filed it as operator error.", "operator-error", "operator error"),
    ("Someone should have checked the graph.", "should-have", "should have"),
    ("The on-call shouldn’t have restarted it.", "should-have", "shouldn’t have"),
    ("The engineer failed to notice the alert.", "failed-to", "failed to"),
    ("The responder forgot to drain the node.", "forgot-to", "forgot to"),
    ("A careless change to the config.", "careless", "careless"),
    ("It was negligent to skip the review.", "negligent", "negligent"),
    ("It was Ana's mistake.", "fault", "Ana's mistake"),
    ("It was the operator’s fault.", "fault", "operator’s fault"),
    ("Not his fault at all.", "fault", "his fault"),
    ("Nobody wants to blame the intern.", "blame", "to blame"),
    ("They blamed the intern.", "blame", "blamed"),
    ("The team was at fault.", "blame", "at fault"),
    ("The reviewer didn't bother to run the tests.", "didnt-bother", "didn't bother"),
    ("Obviously the flag was wrong.", "obviously", "Obviously"),
    ("They should just have rolled back.", "just", "should just"),
    ("All they had to do was wait.", "just", "All they had to do"),
    ("Somebody messed up the DNS record.", "made-a-mistake", "messed up"),
    ("The root cause was the engineer on call.", "root-cause-person",
     "root cause was the engineer"),
])
def test_each_rule(rules, text, rule, phrase):
    assert (rule, phrase) in found(text, rules)


def test_each_hint_has_a_suggestion_for_systems_wording(rules):
    hint = find_hints("It was human error.", rules)[0]
    assert hint.suggestion.startswith("Describe what in the system made this action possible")
    assert all(r.suggestion for r in rules.rules)


@pytest.mark.parametrize("text", [
    "The cache was flushed at 14:02 and recovered just after 14:30.",
    "Our blameless culture: no blame, only learning.",
    "We used git blame to find the change.",
    "The error budget was exhausted; the error rate rose.",
    "The humane errorless design.",
    "Shouldhave, failedto and forgotten are not phrases.",
    "The memory could just as well have damaged the hash digits.",
])
def test_ordinary_sentences_give_no_hints(rules, text):
    assert found(text, rules) == []


def test_matching_ignores_case_spacing_and_line_breaks(rules):
    assert found("HUMAN   ERROR", rules) == [("human-error", "HUMAN   ERROR")]
    assert found("it was human\nerror", rules) == [("human-error", "human\nerror")]
    assert found("human-error", rules) == [("human-error", "human-error")]


def test_whole_words_only(rules):
    assert found("blameless, blame-free, superhuman errors", rules) == []


# --------------------------------------------------------------------------------------------
# A person as the subject of a failure


@pytest.mark.parametrize("text, phrase", [
    ("Bob forgot the flag.", "Bob forgot"),
    ("At 14:02 Priya overlooked the warning.", "Priya overlooked"),
    ("Then Zoë misconfigured the proxy.", "Zoë misconfigured"),
    ("Łukasz didn't check the dashboard.", "Łukasz didn't check"),
    ("- O'Brien neglected the runbook.", "O'Brien neglected"),
    ("McKenzie overlooked it; Jean-Luc forgot it.", "McKenzie overlooked"),
    ("McKenzie overlooked it; Jean-Luc forgot it.", "Jean-Luc forgot"),
    ("**Bob** forgot it and _Zoë_ overlooked it.", "Bob** forgot"),
    ("**Bob** forgot it and _Zoë_ overlooked it.", "Zoë_ overlooked"),
])
def test_a_capitalised_name_before_a_person_verb(rules, text, phrase):
    assert ("name-as-subject", phrase) in found(text, rules)


@pytest.mark.parametrize("text, phrase", [
    ("Ana deleted the production table.", "Ana deleted"),
    ("ana pushed the config without review.", "ana pushed"),
    ("Ana Lima broke the build.", "Ana Lima broke"),
    ("@carol missed the page.", "@carol missed"),
    ("Then Ana\nfailed over the wrong region.", "Ana\nfailed"),
])
def test_known_names_before_any_failure_verb(rules, text, phrase):
    names = ["Ana Lima <ana@example.org>", "carol"]
    assert ("name-as-subject", phrase) in found(text, rules, names)


def test_system_verbs_need_a_known_name(rules):
    # "failed", "deleted", "pushed" are what systems do too: only flagged after a known person.
    assert found("Dmitri deleted the table.", rules) == []
    assert ("name-as-subject", "Dmitri deleted") in found("Dmitri deleted the table.", rules,
                                                           ["Dmitri"])


@pytest.mark.parametrize("text", [
    "The deploy failed. The script deleted the table. The alert missed the spike.",
    "We forgot nothing. It forgot the session. This overlooked case. They neglected it.",
    "Redis failed over. Kubernetes deleted the pod. Checkout broke. Monitoring missed it.",
    "API overlooked the header. GitHub neglected the webhook. CI3 forgot the cache.",
    "Deploy forgot the flag. Terraform misconfigured the bucket.",
    "See src/Bob forgot and ana_lima forgot and x.Bob forgot.",
    "The cache pushed stale data. Nginx ignored the header.",
])
def test_sentence_openers_and_systems_are_not_people(rules, text):
    names = ["Ana", "Bob"]
    assert [h for h in find_hints(text, rules, names) if h.rule == "name-as-subject"] == []


def test_names_come_from_the_front_matter():
    fm = {"authors": ["Ana Lima", "bob@example.org"], "incident_commander": "Carol",
          "action_items": [{"title": "x", "owner": "dmitri.k"}, {"title": "y"}, "z"]}
    assert names_from_front_matter(fm) == ["Ana Lima", "bob@example.org", "Carol", "dmitri.k"]
    rules = load_rules()
    text = "bob pushed it. Carol deleted it. dmitri failed to say. Dmitri.k broke it."
    subjects = [h.phrase for h in find_hints(text, rules, names_from_front_matter(fm))
                if h.rule == "name-as-subject"]
    assert subjects == ["bob pushed", "Carol deleted", "dmitri failed", "Dmitri.k broke"]


# --------------------------------------------------------------------------------------------
# Skipped parts


def test_code_spans_fenced_blocks_comments_and_urls_are_skipped(rules):
    text = (
        "Run `should have` here.\n"
        "```\nhuman error in a log\n```\n"
        "~~~~python\nassert not careless\n~~~~\n"
        "<!-- Template hint: what should have happened? -->\n"
        "See https://wiki.example.org/human-error and [x](/should-have).\n"
        "    ``blame ` with ticks``\n"
        "But this human error counts.\n"
    )
    assert found(text, rules) == [("human-error", "human error")]
    assert find_hints(text, rules)[0].line == 11


def test_an_unclosed_fence_runs_to_the_end(rules):
    assert found("ok\n```\nhuman error\nstill code", rules) == []


# --------------------------------------------------------------------------------------------
# Positions


def test_offsets_lines_and_columns(rules):
    text = "Line one.\nIt was human error, and\n\tAna forgot to look."
    hs = find_hints(text, rules, ["Ana"])
    assert [(h.rule, h.line, h.column) for h in hs] == [
        ("human-error", 2, 8), ("name-as-subject", 3, 2), ("forgot-to", 3, 6)]
    for h in hs:
        assert text[h.start:h.end] == h.phrase


def test_positions_count_code_points_after_emoji_and_accents(rules):
    text = "🔥🔥 Zoë: “human error” — again"
    (hint,) = find_hints(text, rules)
    assert text[hint.start:hint.end] == "human error"
    assert hint.column == hint.start + 1
    # A lower-case form longer than the original ("İ" → "i̇") must not shift positions.
    text = "İİİ human error"
    (hint,) = find_hints(text, rules)
    assert text[hint.start:hint.end] == "human error"


def test_to_json_has_the_api_fields(rules):
    (hint,) = find_hints("human error", rules)
    assert hint.to_json() == {"start": 0, "end": 11, "line": 1, "column": 1,
                              "phrase": "human error", "suggestion": hint.suggestion,
                              "rule": "human-error"}


# --------------------------------------------------------------------------------------------
# Robustness and speed


def test_naughty_strings_never_crash(rules, naughty_strings):
    for s in naughty_strings:
        for h in find_hints(s, rules, [s]):
            assert s[h.start:h.end] == h.phrase
        find_hints(s + " human error " + s, rules, names=[s, "Ana"])


@pytest.mark.parametrize("text", [None, "", 42, "\x00\x01", "`" * 1000, "```" * 300,
                                  "<!--" * 500, "'" * 5000, "@" * 3000 + " failed"])
def test_odd_input(rules, text):
    assert isinstance(find_hints(text, rules), list)


def test_five_thousand_words_in_a_few_milliseconds(rules):
    paragraph = ("At 14:02 the checkout service failed to start after the deploy, and we should "
                 "have seen the alert sooner. Ana restarted the pods while Redis failed over; "
                 "the cache `warmup` job ran. ")
    text = "\n\n".join([paragraph] * 160)  # ≈ 5,000 words
    assert len(text.split()) >= 5000
    find_hints(text, rules, ["Ana"])  # warm up
    best = min(_timed(lambda: find_hints(text, rules, ["Ana"])) for _ in range(10))
    assert best < 0.005, f"{best * 1000:.1f} ms"


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


# --------------------------------------------------------------------------------------------
# The rules file


def test_the_default_file_loads_and_is_cached():
    assert hints.cached_rules() is hints.cached_rules()
    assert {r.name for r in hints.cached_rules().rules} >= {
        "human-error", "should-have", "failed-to", "forgot-to", "careless", "fault", "blame"}


def test_a_custom_file_and_reload_on_change(tmp_path):
    path = tmp_path / "rules.yml"
    path.write_text("rules:\n  - name: hero\n    phrases: [rockstar, 10x engineer]\n"
                    "    suggestion: Describe the work, not the person.\n", "utf-8")
    rules = hints.cached_rules(path)
    assert found("Our rockstar, a 10x-engineer.", rules) == [
        ("hero", "rockstar"), ("hero", "10x-engineer")]
    assert found("human error", rules) == []  # no subjects, no other rules
    path.write_text("rules:\n  - name: ninja\n    pattern: ninjas?\n"
                    "    suggestion: Say what they did.\n", "utf-8")
    import os

    os.utime(path, ns=(1, 2_000_000_000_000_000_000))
    assert found("two Ninjas", hints.cached_rules(path)) == [("ninja", "Ninjas")]


@pytest.mark.parametrize("text, message", [
    ("rules: 3", "expected a mapping with a 'rules' list"),
    ("rules:\n  - name: x\n    phrases: [a]\n", "needs a suggestion"),
    ("rules:\n  - name: x\n    suggestion: s\n", "needs phrases or a pattern"),
    ("rules:\n  - name: x\n    pattern: '(unclosed'\n    suggestion: s\n",
     "not a valid regular expression"),
    ("rules:\n  - name: x\n    phrases: [no]\n    suggestion: s\n", 'put such words in quotes'),
    ("rules: [\n", "invalid YAML"),
])
def test_mistakes_in_the_rules_file_are_named(tmp_path, text, message):
    path = tmp_path / "rules.yml"
    path.write_text(text, "utf-8")
    with pytest.raises(hints.HintsError, match=message) as info:
        load_rules(path)
    assert str(path) in str(info.value)


def test_a_missing_rules_file(tmp_path):
    with pytest.raises(hints.HintsError, match="cannot read"):
        load_rules(tmp_path / "nope.yml")
