"""Blameless writing hints: phrases that put blame on people, each with a suggestion.

The rules live in a YAML file (:data:`DEFAULT_RULES_FILE`, or the ``WIKI_HINTS_FILE`` setting),
described in that file's header. :func:`find_hints` scans Markdown text and returns
:class:`Hint` objects with their position; it skips code spans, fenced code blocks, HTML
comments and URLs, and never raises on odd text. Hints are advice: nothing here can block a save.

Two kinds of rule:

* **phrases and patterns** ("human error", "should have", "Ana's mistake"), all joined into one
  case-insensitive regular expression so that a 5,000-word postmortem is scanned in one pass;
* **a person as the subject of a failure** ("Ana forgot to …"): a word followed by a verb of
  failure. Verbs only people do ("forgot", "overlooked") are flagged after any capitalised word
  that is not a common sentence opener or a system's name ("The", "We", "Redis"); verbs systems
  do too ("failed", "deleted", "pushed") only after a name passed in ``names`` (the document's
  authors, incident commander and action-item owners), so "Redis failed" is never flagged.

Offsets (``start``, ``end``, ``column``) count Unicode code points, as Python's ``str`` does;
``line`` and ``column`` are 1-based. No Flask here.
"""

from __future__ import annotations

import bisect
import functools
import os
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

DEFAULT_RULES_FILE = Path(__file__).parent / "data" / "blameless.yml"

__all__ = ["DEFAULT_RULES_FILE", "Hint", "HintsError", "Rule", "Rules", "cached_rules",
           "find_hints", "load_rules", "names_from_front_matter"]


class HintsError(Exception):
    """The rules file cannot be read or has a mistake (the message names the file and rule)."""


@dataclass(frozen=True)
class Rule:
    name: str
    suggestion: str
    phrases: tuple[str, ...] = ()
    pattern: str | None = None  #: a regular expression, matched case-insensitively
    not_after: frozenset[str] = frozenset()  #: casefolded words that cancel a match before it


@dataclass(frozen=True)
class Hint:
    start: int  #: offset of the first character (code points)
    end: int  #: offset after the last character
    line: int  #: 1-based
    column: int  #: 1-based, in code points
    phrase: str  #: the text as written
    suggestion: str
    rule: str  #: the rule's name

    def to_json(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------------------------
# Rules
#
# Speed: Python's ``re`` scans fast only when a pattern starts with literal characters and has
# no IGNORECASE (it then skips positions whose character starts no alternative, and tries only
# the alternatives starting with the right character). So phrases are matched as one trie-shaped
# expression against a lower-cased copy of the text, word boundaries at the start are checked in
# code, and the rule of a match is looked up by its normalised text. The subject rule looks for
# the verbs the same way and then checks the one or two words before each.

#: Between two words of a phrase, and for a hyphen inside one: spaces, line breaks or a hyphen.
_SEP = r"(?:\s+|-)"
_APOS = "['’]"
_WORD_BEFORE_RE = re.compile(r"([\w'’]+)[^\w\n]*\Z")


def _atoms(phrase: str) -> tuple[str, ...]:
    """A phrase as trie atoms: lower-case characters, ``_SEP`` and ``_APOS``."""
    out: list[str] = []
    for word in phrase.lower().split():
        if out:
            out.append(_SEP)
        for ch in word:
            if ch in "'’":
                out.append(_APOS)
            elif ch == "-":
                out.append(_SEP)
            else:
                out.append(ch)
    if not out:
        raise ValueError("empty phrase")
    return tuple(out)


def _key(text: str) -> str:
    """Normalised text of a phrase or a match: lower case, one space, one kind of apostrophe."""
    return re.sub(r"[\s-]+", " ", text.lower().replace("’", "'")).strip()


def _trie_regex(phrases: Iterable[str]) -> str:
    """One expression matching any of ``phrases`` (whole words at the end; the start is checked
    by the caller), shaped as a trie so that each position is tried against few alternatives."""
    trie: dict = {}
    for phrase in phrases:
        node = trie
        for atom in _atoms(phrase):
            node = node.setdefault(atom, {})
        node[""] = True  # end of a phrase

    def emit(node: dict) -> str:
        options = []
        for atom, child in node.items():
            if atom == "":
                continue
            literal = atom if atom in (_SEP, _APOS) else re.escape(atom)
            options.append(literal + emit(child))
        if "" in node:
            options.append(r"(?![\w-])")  # longer phrases first, then the end of this one
        if len(options) == 1:
            return options[0]
        return "(?:" + "|".join(options) + ")"

    return emit(trie) if trie else r"(?!x)x"


def _lowered(text: str) -> str:
    """``text.lower()`` with the same length (a few characters, e.g. "İ", lower to two)."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(c if len(c.lower()) != 1 else c.lower() for c in text)


def _starts_word(text: str, start: int) -> bool:
    return start == 0 or not (text[start - 1].isalnum() or text[start - 1] in "_-")


class Rules:
    """A compiled rule set. Build it with :func:`load_rules` or :meth:`from_mapping`."""

    def __init__(self, rules: list[Rule], subject_rule: str = "name-as-subject",
                 subject_suggestion: str = "", person_verbs: Iterable[str] = (),
                 system_verbs: Iterable[str] = (), not_names: Iterable[str] = (),
                 source: str = "<rules>"):
        self.rules = tuple(rules)
        self.source = source
        self.phrases: dict[str, Rule] = {}
        self.patterns: list[tuple[Rule, re.Pattern]] = []
        for rule in self.rules:
            for phrase in rule.phrases:
                self.phrases.setdefault(_key(phrase), rule)
            if rule.pattern:
                self.patterns.append((rule, re.compile(rule.pattern, re.IGNORECASE)))
        self.phrase_re = re.compile(_trie_regex(self.phrases))
        self.subject_rule = subject_rule
        self.subject_suggestion = subject_suggestion
        self.verbs = {_key(v): "system" for v in system_verbs}
        self.verbs.update({_key(v): "person" for v in person_verbs})
        self.verb_re = re.compile(_trie_regex(self.verbs)) if self.verbs else None
        self.not_names = frozenset(w.casefold() for w in not_names)

    @classmethod
    def from_mapping(cls, data: object, source: str = "<rules>") -> Rules:
        """Build rules from the loaded YAML (see ``wiki/data/blameless.yml`` for the format)."""
        if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
            raise HintsError(f"{source}: expected a mapping with a 'rules' list")
        rules = []
        for n, raw in enumerate(data["rules"], 1):
            where = f"{source}: rule {n}"
            if not isinstance(raw, dict):
                raise HintsError(f"{where}: expected a mapping with name, suggestion and phrases")
            name = str(raw.get("name") or f"rule-{n}").strip()
            where = f"{where} ({name})"
            suggestion = " ".join(str(raw.get("suggestion") or "").split())
            if not suggestion:
                raise HintsError(f"{where}: needs a suggestion")
            phrases = _str_list(raw.get("phrases"), f"{where}: phrases")
            for phrase in phrases:
                if not _key(phrase):
                    raise HintsError(f"{where}: an empty phrase")
            pattern = raw.get("pattern")
            if pattern is not None:
                pattern = str(pattern).strip()
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise HintsError(f"{where}: pattern is not a valid regular expression: "
                                     f"{exc}") from None
            if not phrases and not pattern:
                raise HintsError(f"{where}: needs phrases or a pattern")
            not_after = _str_list(raw.get("not_after"), f"{where}: not_after")
            rules.append(Rule(name, suggestion, tuple(phrases), pattern or None,
                              frozenset(w.casefold() for w in not_after)))

        subjects = data.get("subjects") or {}
        if not isinstance(subjects, dict):
            raise HintsError(f"{source}: subjects must be a mapping")
        return cls(
            rules,
            subject_rule=str(subjects.get("name") or "name-as-subject"),
            subject_suggestion=" ".join(str(subjects.get("suggestion") or
                                            "Make the system the subject, not a person.").split()),
            person_verbs=_str_list(subjects.get("verbs"), f"{source}: subjects.verbs"),
            system_verbs=_str_list(subjects.get("system_verbs"),
                                   f"{source}: subjects.system_verbs"),
            not_names=_str_list(subjects.get("not_names"), f"{source}: subjects.not_names"),
            source=source,
        )


def _str_list(value: object, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise HintsError(f"{where} must be a list")
    if any(isinstance(v, bool) for v in value):
        raise HintsError(f'{where}: YAML reads no/yes/on/off as true or false: put such words '
                         f'in quotes ("no")')
    return [str(v).strip() for v in value if v is not None and str(v).strip()]


def load_rules(path: str | os.PathLike | None = None) -> Rules:
    """Read and compile a rules file (default :data:`DEFAULT_RULES_FILE`). Raises HintsError."""
    path = Path(path) if path else DEFAULT_RULES_FILE
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise HintsError(f"{path}: cannot read the hints file: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise HintsError(f"{path}: invalid YAML: {exc}") from None
    return Rules.from_mapping(data, str(path))


def cached_rules(path: str | os.PathLike | None = None) -> Rules:
    """:func:`load_rules`, compiled once per version of the file (edits are picked up)."""
    path = Path(path) if path else DEFAULT_RULES_FILE
    try:
        st = path.stat()
        stamp = (st.st_mtime_ns, st.st_size)
    except OSError:
        stamp = None
    return _cached(str(path), stamp)


@functools.lru_cache(maxsize=8)
def _cached(path: str, stamp) -> Rules:
    return load_rules(path)


# --------------------------------------------------------------------------------------------
# What not to look at

#: Opening or closing line of a fenced code block (``` or ~~~, up to 3 spaces indented).
_FENCE_RE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})")
#: A code span: a run of backticks, text not crossing a blank line, the same run again.
#: (Patterns here start with a literal character, which keeps the scan fast; see above.)
_CODE_SPAN_RE = re.compile(r"(`+)(?!`)((?:(?!\n[ \t]*\n).)+?)(?<!`)\1(?!`)", re.DOTALL)
#: An HTML comment (templates use them for guidance), an autolink or a bare URL, a link
#: target. Matched against the lower-cased text.
_OTHER_SKIPS_RE = re.compile(
    r"<!--.*?(?:-->|\Z)"
    r"|<[a-z][a-z0-9+.\-]*:[^\s<>]*>"
    r"|(?:https?|ftp|mailto):[^\s<>()\[\]]+"
    r"|\]\([^()\s]*\)",
    re.DOTALL,
)


def _skipped_ranges(text: str) -> list[tuple[int, int]]:
    ranges = []
    pos, fence, fence_start = 0, None, 0
    for line in text.split("\n"):
        m = _FENCE_RE.match(line)
        if m:
            marker = m.group(1)
            if fence is None:
                fence, fence_start = marker, pos
            elif marker[0] == fence[0] and len(marker) >= len(fence) and \
                    not line.strip().strip(marker[0]):
                ranges.append((fence_start, pos + len(line)))
                fence = None
        pos += len(line) + 1
    if fence is not None:  # an unclosed fence runs to the end, as in CommonMark
        ranges.append((fence_start, len(text)))
    ranges.extend(m.span() for m in _CODE_SPAN_RE.finditer(text))
    ranges.extend(m.span() for m in _OTHER_SKIPS_RE.finditer(_lowered(text)))
    return ranges


def _masked(text: str) -> str:
    """``text`` with skipped parts blanked out (same length, newlines kept)."""
    ranges = sorted(_skipped_ranges(text))
    if not ranges:
        return text
    pieces, pos = [], 0
    for start, end in ranges:
        start = max(start, pos)
        if end <= start:
            continue
        pieces.append(text[pos:start])
        pieces.append(_NOT_NEWLINE_RE.sub(" ", text[start:end]))
        pos = end
    pieces.append(text[pos:])
    return "".join(pieces)


_NOT_NEWLINE_RE = re.compile(r"[^\n]")


# --------------------------------------------------------------------------------------------
# Names


def names_from_front_matter(front_matter: dict) -> list[str]:
    """People a postmortem names: authors, incident commander, action-item owners."""
    out: list[str] = []

    def add(value):
        if isinstance(value, str) and value.strip():
            out.append(value.strip())
        elif isinstance(value, list):
            for item in value:
                add(item)

    add(front_matter.get("authors"))
    add(front_matter.get("incident_commander"))
    for item in front_matter.get("action_items") or []:
        if isinstance(item, dict):
            add(item.get("owner"))
    return out


_EMAIL_RE = re.compile(r"<[^<>]*>|\([^()]*\)|\S+@\S+")


def _name_words(names: Iterable[str], not_names: frozenset[str]) -> frozenset[str]:
    """``["Ana Lima <ana@x.org>", "@bob", "carol.diaz"]`` → casefolded words to recognise."""
    words = set()
    for name in names:
        if not isinstance(name, str):
            continue
        emails = re.findall(r"([^\s<>@]+)@", name)
        text = _EMAIL_RE.sub(" ", name)
        for token in re.split(r"[\s,;/]+", text) + emails:
            token = token.strip("@'’\".:")
            if not token:
                continue
            for word in {token, *re.split(r"[._\-]+", token)}:
                folded = word.casefold()
                if len(folded) >= 2 and any(c.isalpha() for c in folded) \
                        and folded not in not_names:
                    words.add(folded)
    return frozenset(words)


def _looks_like_name(word: str) -> bool:
    """A capitalised word that is not an acronym (``API``), a CamelCase product (``GitHub``)
    or code-ish (``CI3``); capitals after ' and - (``O'Brien``, ``Jean-Luc``) and in
    ``Mc…`` names are fine."""
    if not word[:1].isupper() or any(c.isdigit() for c in word):
        return False
    if not any(c.isalpha() for c in word[1:]):
        return False
    for n, c in enumerate(word[1:], 1):
        if c.isupper() and word[n - 1] not in "'’-" and not (n == 2 and word[:2] == "Mc"):
            return False
    return True


# --------------------------------------------------------------------------------------------
# Finding hints


class _Lines:
    """Offset → (line, column), by bisecting the offsets of the newlines."""

    def __init__(self, text: str):
        self.starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def at(self, offset: int) -> tuple[int, int]:
        n = bisect.bisect_right(self.starts, offset) - 1
        return n + 1, offset - self.starts[n] + 1


def find_hints(text: str, rules: Rules | None = None, names: Iterable[str] = ()) -> list[Hint]:
    """Every hint in ``text`` (Markdown), ordered by position.

    ``names`` are people the document names (see :func:`names_from_front_matter`); a failure
    verb after one of them is a hint. ``rules`` default to :func:`cached_rules` of the default
    file.
    """
    if not isinstance(text, str) or not text:
        return []
    rules = rules or cached_rules()
    masked = _masked(text)
    lowered = _lowered(masked)
    lines = _Lines(text)
    found: dict[tuple[int, int, str], Hint] = {}

    def add(start: int, end: int, rule: str, suggestion: str) -> None:
        line, column = lines.at(start)
        found.setdefault((start, end, rule),
                         Hint(start, end, line, column, text[start:end], suggestion, rule))

    for m in rules.phrase_re.finditer(lowered):
        start = m.start()
        if not _starts_word(lowered, start):
            continue
        phrase = m.group()
        rule = rules.phrases.get(phrase) or rules.phrases.get(_key(phrase))
        if rule is None or (rule.not_after and _word_before(lowered, start) in rule.not_after):
            continue
        add(start, m.end(), rule.name, rule.suggestion)

    for rule, pattern in rules.patterns:
        for m in pattern.finditer(masked):
            start, end = m.span()
            if end <= start:
                continue
            while start > 0 and (masked[start - 1].isalnum() or masked[start - 1] == "_"):
                start -= 1  # a match starting inside a word shows the whole word
            if rule.not_after and _word_before(lowered, start) in rule.not_after:
                continue
            add(start, end, rule.name, rule.suggestion)

    if rules.verb_re is not None:
        known = _name_words(names, rules.not_names)
        for m in rules.verb_re.finditer(lowered):
            verb = m.group()
            kind = rules.verbs.get(verb) or rules.verbs.get(_key(verb))
            subject = _word_before_verb(masked, m.start())
            if kind is None or subject is None:
                continue
            second_start, second = subject
            if not _is_person(second, kind == "person", known, rules.not_names):
                continue
            # "Ana Lima forgot": a known name right before the subject belongs to it.
            first = _word_before_verb(masked, second_start)
            start = first[0] if first and first[1].lstrip("@").casefold() in known \
                else second_start
            add(start, m.end(), rules.subject_rule, rules.subject_suggestion)

    return sorted(found.values(), key=lambda h: (h.start, h.end, h.rule))


def _word_before(lowered: str, start: int) -> str:
    m = _WORD_BEFORE_RE.search(lowered, max(0, start - 40), start)
    return m.group(1).replace("’", "'") if m else ""


def _word_before_verb(text: str, end: int) -> tuple[int, str] | None:
    """The word (a possible name, maybe ``@``-prefixed or in Markdown emphasis) before ``end``,
    separated from it by spaces and at most one line break: ``(start, word)``, or ``None``."""
    j = end
    while j > 0 and text[j - 1] in " \t":
        j -= 1
    if j > 0 and text[j - 1] == "\n":
        j -= 1
        while j > 0 and text[j - 1] in " \t":
            j -= 1
    if j == end:
        return None
    while j > 0 and text[j - 1] in _EMPHASIS:
        j -= 1  # "**Ana** forgot"
    k = j
    while k > 0:
        ch = text[k - 1]
        if ch.isalnum() or unicodedata.combining(ch):
            k -= 1
        elif ch in "'’.-" and k < j and text[k].isalpha() and k > 1 and text[k - 2].isalnum():
            k -= 1  # inner punctuation: O'Brien, Jean-Luc, ana.lima
        else:
            break
    if k == j or not text[k].isalpha():
        return None
    if k > 0 and text[k - 1] == "@":
        k -= 1
    before = k
    while before > 0 and text[before - 1] in _EMPHASIS:
        before -= 1
    if before > 0 and (text[before - 1].isalnum() or text[before - 1] in "_@'’.-/\\"):
        return None  # glued to something else: a path, an address, a possessive
    return k, text[k:j]


#: Markdown emphasis around a name: ``**Ana**``, ``_Ana_``, ``~~Ana~~``.
_EMPHASIS = "*_~"


def _is_person(word: str, person_verb: bool, known: frozenset[str],
               not_names: frozenset[str]) -> bool:
    """Whether ``word`` before a failure verb names a person.

    A known name (from the document) counts before any verb; another capitalised word only
    before a verb that only people do, and not when it is a common sentence opener or a
    system's name (``not_names``) or looks like an acronym or a product (``API``, ``GitHub``).
    """
    bare = word.lstrip("@")
    folded = bare.casefold()
    if folded in known:
        return True
    return person_verb and folded not in not_names and _looks_like_name(bare)
