"""Bug signatures against real pastes: normalising, stack-trace parsing and RE2 set matching.

No Flask here. Four layers, each usable from a test or the CLI:

* **Normaliser** — :func:`strip_ansi`, :func:`strip_prefix` (leading timestamps, levels, thread
  and process tags), :func:`normalise_line` (numbers, hex, UUIDs, IPs, paths, emails and quoted
  values become the typed placeholders of templates), :func:`template_from_lines` ("create a
  signature from this") and :func:`error_tokens` (exception names, errno-like codes, HTTP
  errors). The similar-incidents engine reuses them.
* **Stack traces** — :func:`parse_stack_traces` recognises Python, Java (with ``Caused by``),
  JavaScript/Node, Go (panics and goroutine dumps), Ruby and .NET traces and splits them into
  :class:`Frame` objects plus the exception type and message.
* **Patterns** — :func:`compile_pattern` turns one ``{kind, value, …}`` mapping of a signature's
  front matter into a :class:`CompiledPattern`, or raises :class:`PatternError` saying why not
  (a regex RE2 cannot run, an unknown placeholder, …). :func:`pattern_errors` lists every problem
  of a signature's front matter at once, for validation on save.
* **Matching** — :class:`SignatureIndex` compiles the line patterns (literal, regex, template) of
  every active signature into one ``re2.Set``, so a paste is scanned once per line whatever the
  number of signatures; each line the set reports is then confirmed with the individual pattern
  to get the evidence. ``exception`` and ``frames`` patterns are evaluated on the parsed stack
  traces. :func:`check_examples` ("examples are tests") and :func:`breadth_warnings` (the
  too-broad guard) work on one signature.

Everything that runs a user's pattern runs it with RE2, which matches in time linear in the
input: no pattern can hang the server. The normaliser's own regexes run with Python's ``re`` on
lines cut to :data:`MAX_NORMALISED_LINE` characters; each of them starts only at a token boundary
(a negative look-behind on its first character class) and uses possessive quantifiers, so none
of them backtracks over a line more than once.
"""

from __future__ import annotations

import functools
import logging
import re
import re._constants as _sre  # Python's regex parser, only used to find the literal text
import re._parser as _sre_parse  # a regex requires (Python >= 3.11)
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import re2

log = logging.getLogger(__name__)

__all__ = [
    "CompiledPattern", "CompiledSignature", "Evidence", "Frame", "MatchResult", "Paste",
    "PatternError", "PLACEHOLDERS", "SignatureIndex", "SignatureMatch", "StackTrace",
    "breadth_warnings", "check_examples", "compile_pattern", "compile_signature",
    "compile_template", "decode_paste", "document_texts", "error_tokens", "find_exceptions",
    "load_background", "match_signature", "normalise_line", "normalise_text",
    "parse_stack_traces", "pattern_errors", "strip_ansi", "strip_prefix", "template_from_lines",
]

#: Lines longer than this are cut before normalising (matching always sees the whole line).
MAX_NORMALISED_LINE = 4096
#: Evidence lines kept per pattern of a match (the total count is kept too).
MAX_EVIDENCE_PER_PATTERN = 20
#: Characters of a line shown as evidence (around the matched part).
MAX_EVIDENCE_TEXT = 1000
#: Partial matches reported for one paste (confirmed ones are never cut).
MAX_PARTIAL = 25
#: Longest regex or template accepted, in characters.
MAX_PATTERN_LENGTH = 10_000
#: Share of background lines above which a pattern is "too broad".
BREADTH_LIMIT = 0.01
#: Shortest literal text that anchors a signature.
MIN_ANCHOR = 4

BACKGROUND_PATH = Path(__file__).resolve().parent / "data" / "background.log"


# --------------------------------------------------------------------------------------------
# Errors


class PatternError(ValueError):
    """A pattern that cannot be compiled; the message is meant for the signature's author."""


class SignatureError(ValueError):
    """A signature that cannot be matched: ``problems`` names each broken pattern."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


# --------------------------------------------------------------------------------------------
# RE2


def _options(case_sensitive: bool = True, max_mem: int | None = None) -> re2.Options:
    options = re2.Options()
    options.log_errors = False
    options.case_sensitive = case_sensitive
    if max_mem:
        options.max_mem = max_mem
    return options


_RE2_OPTIONS = _options()


def _re2_reason(exc: Exception, source: str = "") -> str:
    """RE2's error message, with a hint for the usual suspects."""
    raw = exc.args[0] if exc.args else str(exc)
    reason = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    if re.search(r"invalid escape sequence: \\[1-9]", reason) or (
            "invalid perl operator: (?P" in reason and "(?P=" in source):
        return f"{reason} — backreferences are not supported (RE2 matches in linear time)"
    if re.search(r"invalid perl operator: \(\?<?[=!]", reason):
        return f"{reason} — lookahead and lookbehind are not supported (RE2 matches in linear time)"
    if "invalid repetition size" in reason:
        return f"{reason} — repetition counts go up to 1000"
    if "pattern too large" in reason:
        return f"{reason} — the pattern needs too much memory; simplify it"
    return reason


def _compile_re2(source: str, case_sensitive: bool = True):
    try:
        return re2.compile(source, _options(case_sensitive))
    except re2.error as exc:
        raise PatternError(_re2_reason(exc, source)) from None


# --------------------------------------------------------------------------------------------
# Placeholders: the vocabulary shared by templates and the normaliser

#: Characters of a path segment (anything but separators, quotes and brackets).
_SEG = r"""[^ \t\r\n\f\v/\\:"'<>|()\[\]{},;=]"""
_IPV4 = r"(?:[0-9]{1,3}\.){3}[0-9]{1,3}"

#: RE2 source of each placeholder, as used in compiled templates.
PLACEHOLDERS: dict[str, str] = {
    "*": r".*?",
    "num": r"[-+]?[0-9]+(?:\.[0-9]+)*",
    "hex": r"(?:0[xX])?[0-9a-fA-F]+",
    "uuid": r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
    "ip": rf"(?:{_IPV4}|(?:[0-9a-fA-F]{{0,4}}:){{2,7}}(?:{_IPV4}|[0-9a-fA-F]{{1,4}})?)",
    "path": (rf"(?:(?:[A-Za-z]:|~|\.{{1,2}})?(?:[/\\]{_SEG}+)+[/\\]?"
             rf"|{_SEG}+(?:[/\\]{_SEG}+)+[/\\]?)"),
    "email": r"[A-Za-z0-9_.+%-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+",
}
PLACEHOLDER_NAMES = tuple(f"<{name}>" for name in PLACEHOLDERS)

#: ``\<`` (an escaped ``<``), a placeholder-looking ``<name>`` or ``<*>``, or a whitespace run.
_TEMPLATE_TOKEN_RE = re.compile(r"\\<|<(\*|[A-Za-z_][A-Za-z0-9_]*)>|[ \t\r\n\f\v]+")
#: Whitespace a template treats as flexible (and the normaliser collapses): ASCII only, like RE2.
_WS_RE = re.compile(r"[ \t\r\f\v]+")


@dataclass(frozen=True)
class Template:
    source: str  #: the template as written
    regex: str  #: RE2 source
    literals: tuple[str, ...]  #: literal runs between placeholders and whitespace


def compile_template(text: str, case_sensitive: bool = True) -> Template:
    """A template (``Got exception while serving blk_<num> to /<ip>:``) → RE2 source.

    Literal text is escaped; each whitespace run matches any whitespace run; ``<*>`` matches any
    run of tokens (possibly none, so ``a <*> b`` matches ``a b``); ``\\<`` is a literal ``<``.
    Raises :class:`PatternError` for an unknown placeholder or a template without literal text.
    """
    text = str(text)
    if len(text) > MAX_PATTERN_LENGTH:
        raise PatternError(f"is {len(text):,} characters long; the limit is {MAX_PATTERN_LENGTH:,}")
    # Tokens: ("lit", text) | ("ws", None) | ("ph", name)
    tokens: list[tuple[str, str | None]] = []
    pos = 0

    def literal(chunk: str) -> None:
        if not chunk:
            return
        if tokens and tokens[-1][0] == "lit":
            tokens[-1] = ("lit", tokens[-1][1] + chunk)
        else:
            tokens.append(("lit", chunk))

    for m in _TEMPLATE_TOKEN_RE.finditer(text):
        literal(text[pos:m.start()])
        pos = m.end()
        token = m.group(0)
        if token == "\\<":
            literal("<")
        elif m.group(1) is not None:
            name = m.group(1).lower()
            if name not in PLACEHOLDERS:
                raise PatternError(
                    f"unknown placeholder {token}; the placeholders are "
                    f"{', '.join(PLACEHOLDER_NAMES)} (write \\{token} to match the text "
                    f"{token} itself)")
            tokens.append(("ph", name))
        elif tokens and tokens[-1][0] != "ws":
            tokens.append(("ws", None))
    literal(text[pos:])
    while tokens and tokens[-1][0] == "ws":
        tokens.pop()
    # A leading or trailing <*> (with its whitespace) adds nothing to an unanchored search.
    while tokens and tokens[0] in (("ph", "*"), ("ws", None)):
        tokens.pop(0)
    while tokens and tokens[-1] in (("ph", "*"), ("ws", None)):
        tokens.pop()
    literals = tuple(t[1] for t in tokens if t[0] == "lit")
    if not literals:
        raise PatternError("has no literal text, so it would match almost any line")
    parts: list[str] = []
    i = 0
    while i < len(tokens):
        kind, value = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if kind == "lit":
            parts.append(re2.escape(value))
        elif kind == "ws":
            if nxt == ("ph", "*") and i + 2 < len(tokens) and tokens[i + 2][0] == "ws":
                parts.append(r"\s+(?:.*?\s+)?")  # "a <*> b" also matches "a b"
                i += 3
                continue
            parts.append(r"\s+")
        else:
            parts.append(f"(?:{PLACEHOLDERS[value]})")
        i += 1
    regex = "".join(parts)
    if not case_sensitive:
        regex = "(?i)" + regex
    return Template(text, regex, literals)


# --------------------------------------------------------------------------------------------
# The normaliser

#: ANSI escape sequences: CSI (colours, cursor), OSC (titles, links; bounded) and two-byte ones.
_ANSI_RE = re.compile(r"\x1b\[[0-?]*+[ -/]*+[@-~]|\x1b\][^\x07\x1b\n]{0,2000}+(?:\x07|\x1b\\)?"
                      r"|\x1b[@-Z\\-_]|\x9b[0-?]*+[ -/]*+[@-~]")


def strip_ansi(text: str) -> str:
    """Remove ANSI colour codes and other terminal escape sequences."""
    if "\x1b" not in text and "\x9b" not in text:
        return text
    return _ANSI_RE.sub("", text)


_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_LEVELS = (r"(?:TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|ERR|FATAL|CRIT|CRITICAL|SEVERE|"
           r"ALERT|EMERG)")
_LOWER_LEVELS = r"(?:trace|debug|info|notice|warn|warning|error|fatal|critical)"
#: One leading token of a log prefix. Tried repeatedly at the start of a line.
_PREFIX_RE = re.compile(rf"""
    (?:
        \[?\d{{4}}[-/.]\d\d[-/.]\d\d                                  # 2023-06-14, 2023/06/14
            (?:[T ]\d\d?:\d\d(?::\d\d)?(?:[.,]\d{{1,9}})?)?           #  T09:12:00.123
            (?:\ ?(?:Z|[+-]\d\d:?\d\d|UTC|GMT))?\]?                   #  Z, +02:00, UTC
      | \[?\d\d/{_MONTH}/\d{{4}}:\d\d:\d\d:\d\d(?:\ [+-]\d{{4}})?\]?  # 14/Jun/2023:09:12:00 +0000
      | {_MONTH}\ [ \d]\d\ \d\d:\d\d:\d\d(?:\.\d+)?                   # syslog: Jun 14 09:12:00
      | \d\d?\ {_MONTH}\ \d{{4}}\ \d\d:\d\d:\d\d(?:\.\d+)?            # 14 Jun 2023 09:12:00.123
      | \[?\d\d?:\d\d:\d\d(?:[.,]\d+)?\]?                             # 09:12:00.123
      | [IWEF]\d{{4}}\ \d\d:\d\d:\d\d\.\d+\ +\d+\ [\w.-]+:\d+\]       # klog
      | \[?1\d{{9}}(?:\.\d+)?\]?                                      # epoch seconds
      | \[?{_LEVELS}\]?:? | \[{_LOWER_LEVELS}\]                      # INFO, [WARN], ERROR:, [info]
      | (?:stdout|stderr)\ [FP]                                       # CRI runtime: stderr F
    )(?=[ \t]|$)
""", re.VERBOSE | re.ASCII)
#: Tokens only taken once something above was: [thread], [pid], W, host proc[pid]:, 1 ---, -, |
_PREFIX_AFTER_RE = re.compile(r"""
    (?:
        \[[^\]\n]{1,60}+\]                 # [main], [installer 8.0.0], [18231]
      | [DIWEF]                            # one-letter level
      | \d{1,7}\ ---                       # Spring Boot: "1 ---"
      | [-|:]                              # separators
      | [\w.-]{1,64}+\ [\w./-]{1,64}+\[\d{1,10}\]:   # syslog: host proc[pid]:
      | [\w./-]{1,64}+\[\d{1,10}\]:        # proc[pid]:
    )(?=[ \t]|$)
""", re.VERBOSE | re.ASCII)


def strip_prefix(line: str) -> str:
    """A log line without its leading timestamp, level, thread/process tags (best effort)."""
    pos = 0
    stripped = False
    n = len(line)
    for _ in range(12):
        while pos < n and line[pos] in " \t":
            pos += 1
        m = _PREFIX_RE.match(line, pos)
        if m is None and stripped:
            m = _PREFIX_AFTER_RE.match(line, pos)
        if m is None or m.end() == pos:
            break
        pos = m.end()
        stripped = True
    if not stripped:
        return line
    while pos < n and line[pos] in " \t":
        pos += 1
    return line[pos:]


#: ``<name>`` or ``<*>`` in pasted text (``<init>``, ``<module>``): escaped as ``\<name>``.
_ANGLE_RE = re.compile(r"<(?=\*>|[A-Za-z_][A-Za-z0-9_]*+>)")
_H4 = "[0-9a-fA-F]{1,4}"
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
#: Typed values, in order of precedence. Each starts only at a token boundary (look-behind).
_VALUE_PARTS = {
    "url": r"""(?<![A-Za-z0-9+.-])[a-zA-Z][a-zA-Z0-9+.-]{1,15}://[^ \t/"'<>]++
               (?P<urlpath>/[^ \t"'<>]*+)?""",
    "email": r"(?<![\w.+%-])[\w.+%-]++@[A-Za-z0-9-]++(?:\.[A-Za-z0-9-]++)++",
    "uuid": r"""(?<![0-9A-Za-z-])[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-
                [0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?![0-9A-Za-z])""",
    "ip": rf"""(?<![\w.:])(?:{_OCTET}\.){{3}}{_OCTET}(?![\w]|\.\d)
             | (?<![\w:])(?:{_H4}:){{7}}{_H4}(?![\w:])
             | (?<![\w:])(?:{_H4}(?::{_H4}){{0,6}})?::(?:{_H4}(?::{_H4}){{0,6}})?(?![\w:])""",
    "path": rf"""(?<![\w.~/\\-])(?:~|\.{{1,2}})?(?:/{_SEG}++)++/?
               | (?<![\w\\])[A-Za-z]:\\(?:{_SEG}++\\?)++
               | (?<!{_SEG})(?<![/\\]){_SEG}++(?:/{_SEG}++)++/?""",
    "hex": r"""(?<![\w.])(?:0[xX][0-9a-fA-F]++
               | (?=[0-9]*+[a-fA-F])(?=[a-fA-F]*+[0-9])[0-9a-fA-F]{6,}+)(?![\w])""",
    "num": r"""(?:(?<![A-Za-z0-9.])[-+](?=\d))?(?<![A-Za-z0-9.])\d++(?:\.\d++)*+
               (?=(?:ms|us|ns|s|m|h|d|[kKMGT]i?B|[kKMGT]|[bB]|x)?(?![A-Za-z0-9]))""",
}


def _alternation(*names: str) -> re.Pattern:
    return re.compile("|".join(f"(?P<{n}>{_VALUE_PARTS[n]})" for n in names),
                      re.VERBOSE | re.ASCII)


_VALUE_RE = _alternation("url", "email", "uuid", "ip", "path", "hex", "num")
#: Without urls, emails and paths: for what a rejected path candidate holds (HTTP/1.1).
_SIMPLE_RE = _alternation("uuid", "ip", "hex", "num")
_QUOTED_RE = re.compile(r"(?<![\w\\])\"(?:[^\"\\\n]|\\.){0,300}+\""
                        r"""|(?<![\w'])'[^'\n]{0,300}+'(?!\w)|`[^`'\n]{0,300}+[`']""")
_SLASH_IP_RE = re.compile(rf"/(?:{_OCTET}\.){{3}}{_OCTET}")
_BARE_PLACEHOLDER_RE = re.compile(r"<(?:\*|num|hex|uuid|ip|path|email)>")
#: A relative path must look like one: two separators, or a file name with an extension.
_REL_PATH_OK_RE = re.compile(r"(?:/.*/|\.[A-Za-z][A-Za-z0-9]{0,9}$)")


def _replace_value(m: re.Match) -> str:
    kind = m.lastgroup  # the outer group: "url", never its inner "urlpath"
    text = m.group(0)
    if kind == "url":
        path = m.group("urlpath")
        return text[: len(text) - len(path)] + "<path>" if path and path != "/" else text
    if kind == "path" and not text.startswith(("/", "~", ".", "\\")) and ":\\" not in text[:3]:
        if not _REL_PATH_OK_RE.search(text) or text.split("/", 1)[0].isdigit():
            return _SIMPLE_RE.sub(_replace_simple, text)  # and/or, HTTP/1.1, 14/Jun/2023
    if kind == "num" and m.start() >= 2 and m.string[m.start() - 1] == "_" \
            and m.string[m.start() - 2].isdigit():
        return text  # x86_64, utf_8 stays; blk_123 does not
    if kind == "ip" and ":" in text and len(text) < 3:
        return text
    if kind == "path" and _SLASH_IP_RE.fullmatch(text):
        return "/<ip>"  # HDFS: "to /10.251.42.84:50010"
    return f"<{kind}>"


def _replace_simple(m: re.Match) -> str:
    return f"<{m.lastgroup}>"


def _replace_quoted(m: re.Match) -> str:
    """A quoted value (one token) becomes ``"<*>"``; a quoted phrase is a message: kept."""
    text = m.group(0)
    inner = text[1:-1]
    if not inner or _BARE_PLACEHOLDER_RE.fullmatch(inner) or any(c in " \t" for c in inner):
        return text
    return f"{text[0]}<*>{text[-1]}"


def normalise_line(line: str) -> str:
    """One line as a template: prefix stripped, variable parts as typed placeholders.

    ``2023-06-14T09:27:32Z ERROR read of "receipts/en.html" from 10.0.0.7 timed out after 30000 ms``
    → ``read of "<path>" from <ip> timed out after <num> ms``. The result is a valid template
    that matches the line it came from.
    """
    text = strip_prefix(strip_ansi(str(line)).strip())[:MAX_NORMALISED_LINE]
    text = text.replace("\\<", "\\\\<")  # keep a literal "\<" literal
    text = _ANGLE_RE.sub(r"\\<", text)
    text = _VALUE_RE.sub(_replace_value, text)
    text = _QUOTED_RE.sub(_replace_quoted, text)
    return _WS_RE.sub(" ", text).strip()


def template_from_lines(lines: Iterable[str]) -> list[str]:
    """Templates for "create a signature from this": one per distinct non-blank line.

    Lines whose template would have no literal text (a bare number, …) are left out.
    """
    out: list[str] = []
    for line in lines:
        template = normalise_line(line)
        if not template or template in out:
            continue
        try:
            compile_template(template)
        except PatternError:
            continue
        out.append(template)
    return out


# --------------------------------------------------------------------------------------------
# Stack traces


@dataclass(frozen=True)
class Frame:
    function: str  #: as printed: ``writeNew``, ``Context.<anonymous>``, ``(*Server).handle``
    module: str = ""  #: ``com.lumen.profiles.store.DualWriteStore``, ``sqlalchemy.orm.session``
    file: str = ""
    line: int | None = None  #: line in the source file
    text_line: int = 0  #: 1-based line of the paste

    @property
    def name(self) -> str:
        """The qualified name frame globs are matched against: ``module.function``."""
        if self.module and self.function:
            return f"{self.module}.{self.function}"
        return self.function or self.module or self.file

    def names(self) -> list[str]:
        """Every form a glob may match: the name, its dotted/slashed suffixes, function and file."""
        out = [self.name]
        name = self.name
        for sep in (".", "/"):
            pos = 0
            while len(out) < 24:
                pos = name.find(sep, pos)
                if pos < 0:
                    break
                pos += 1
                if name[pos:] and name[pos:] not in out:
                    out.append(name[pos:])
        for extra in (self.function, self.file, self.file.replace("\\", "/").rsplit("/", 1)[-1]):
            if extra and extra not in out:
                out.append(extra)
        return out


@dataclass
class StackTrace:
    language: str  #: python | java | javascript | go | ruby | dotnet
    exception: str = ""  #: type: ``java.lang.NullPointerException``, ``panic`` (Go)
    message: str = ""  #: may span lines
    frames: list[Frame] = field(default_factory=list)
    start_line: int = 0  #: 1-based, first line of the trace (its header when there is one)
    end_line: int = 0
    header_line: int | None = None  #: the line naming the exception
    caused_by: StackTrace | None = None  #: Java "Caused by", Python chained exceptions
    code: str | None = None  #: Node's ``[ERR_ASSERTION]``

    @property
    def short_exception(self) -> str:
        return _short_type(self.exception)


def _short_type(name: str) -> str:
    return re.split(r"\.|::|\$|/", name)[-1] if name else ""


_PY_START_RE = re.compile(r"Traceback \(most recent call last\):\s*$")
_PY_FRAME_RE = re.compile(r'^File "(?P<file>[^"]*)", line (?P<line>\d+)(?:, in (?P<func>.+))?$')
_PY_EXC_RE = re.compile(r"^(?P<type>[A-Za-z_][\w.]*+)(?::[ \t]?(?P<msg>.*))?$")
_PY_CHAIN = ("During handling of the above exception, another exception occurred:",
             "The above exception was the direct cause of the following exception:")
_JAVA_FRAME_RE = re.compile(r"^at (?P<func>[^\s(]++)\((?P<loc>[^)]*+)\)(?P<rest>.*)$")
_JS_FRAME_RE = re.compile(r"^at (?:(?P<func>[^()]+?) \((?P<loc>.*)\)|(?P<bare>[^\s()]+))$")
_JAVA_MORE_RE = re.compile(r"^\.\.\. \d+ (?:more|common frames omitted)$")
_JAVA_CAUSE_RE = re.compile(r"^(?P<kind>Caused by|Suppressed|Wrapped by): (?P<rest>.*)$")
_HEADER_RE = re.compile(
    r'^(?:Exception in thread "[^"\n]*+" |Uncaught |Unhandled exception\. |Unhandled exception: )?'
    r"(?P<type>[A-Za-z_$][\w$]*+(?:[.$][A-Za-z_$][\w$]*+)*+)"
    r"(?: \[(?P<code>[A-Za-z0-9_-]++)\])?(?::[ \t]*+(?P<msg>.*))?$")
_EXC_SUFFIX_RE = re.compile(r"(?:Exception|Error|Timeout|Fault|Failure|Panic|Interrupt|"
                            r"Violation|Exit|Throwable|Rejection|Refused|Denied)$")
_RUBY_FRAME_RE = re.compile(r"^(?:from\s++)?(?P<file>[^\s:'\"`][^:'\"`\n]*?):(?P<line>\d+)"
                            r":in [`'](?P<func>[^'`\n]*)'(?P<rest>.*)$")
_RUBY_TRAILING_TYPE_RE = re.compile(r"^:\s*(?P<msg>.*?)\s*\((?P<type>[A-Z][\w:]*+)\)$")
_RUBY_HEADER_RE = re.compile(r"^(?P<type>[A-Z][\w]*+(?:::[A-Z][\w]*+)*+) \((?P<msg>.*)\):?$")
_RUBY_MSG_TYPE_RE = re.compile(r"^(?P<msg>.*?)\s*\((?P<type>[A-Z][\w]*+(?:::[A-Z][\w]*+)*+)\)$")
_GO_PANIC_RE = re.compile(r"^(?P<type>panic|fatal error): (?P<msg>.*?)(?: \[recovered\])?$")
_GO_GOROUTINE_RE = re.compile(r"^goroutine \d+ \[[^\]\n]*+\]:$")
_GO_FILE_RE = re.compile(r"^(?P<file>\S+?):(?P<line>\d+)(?: \+0x[0-9a-fA-F]+)?$")
_DOTNET_LOC_RE = re.compile(r"^ in (?P<file>.+):line (?P<line>\d+)$")
#: Cheap tests that a paste may hold a stack trace at all (each fast on megabytes of text).
_TRACE_HINTS = ("Traceback (most", "goroutine ", "panic: ", "fatal error: ")
_TRACE_HINT_RES = (re.compile(r"[ \t\n]at (?:[^\s(]+ ?\(|\S+:\d)"), re.compile(r":\d+:in [`']"))


def _may_hold_trace(text: str) -> bool:
    return any(hint in text for hint in _TRACE_HINTS) or any(
        regex.search(text) for regex in _TRACE_HINT_RES)


def _body(line: str) -> str:
    return strip_prefix(line).strip()


def _python_module(path: str) -> str:
    p = path.replace("\\", "/")
    if p.startswith("<"):
        return p
    for marker in ("site-packages/", "dist-packages/", "/lib/python"):
        if marker in p:
            p = p.rsplit(marker, 1)[1]
            if marker == "/lib/python":
                p = p.split("/", 1)[1] if "/" in p else p
            break
    else:
        p = p.lstrip("/")
    if p.endswith(".py"):
        p = p[:-3]
    if p.endswith("/__init__"):
        p = p[: -len("/__init__")]
    return p.replace("/", ".")


def _split_qualified(name: str) -> tuple[str, str]:
    """``com.x.Y.m`` → (``com.x.Y``, ``m``); a name without a dot has no module."""
    if "." not in name:
        return "", name
    module, _, function = name.rpartition(".")
    return module, function


def _go_function(text: str) -> str:
    """``main.(*Server).handle(0xc0, {0x1, 0x2})`` → ``main.(*Server).handle``."""
    text = text.strip()
    if text.startswith("created by "):
        return text[len("created by "):].split(" in goroutine ")[0]
    if text.endswith(")"):
        depth = 0
        for i in range(len(text) - 1, -1, -1):
            if text[i] == ")":
                depth += 1
            elif text[i] == "(":
                depth -= 1
                if depth == 0:
                    return text[:i]
    return text.removesuffix(" ...")


def _go_frame(func: str, file: str, line: int | None, text_line: int) -> Frame:
    head, _, tail = func.rpartition("/")
    dot = tail.find(".")
    if dot > 0:
        module, function = (head + "/" if head else "") + tail[:dot], tail[dot + 1:]
    else:
        module, function = "", func
    return Frame(function, module, file, line, text_line)


def _frame_of(kind: str, m: re.Match, line_no: int) -> Frame:
    if kind == "java":
        qualified = m.group("func").rsplit("/", 1)[-1]  # java.base/java.lang.Thread.run
        module, function = _split_qualified(qualified)
        loc = m.group("loc")
        file, _, num = loc.partition(":")
        dotnet = _DOTNET_LOC_RE.match(m.group("rest") or "")
        if dotnet:
            return Frame(function, module, dotnet.group("file"), int(dotnet.group("line")), line_no)
        return Frame(function, module, file, int(num) if num.isdigit() else None, line_no)
    if kind == "javascript":
        loc = m.group("loc") or m.group("bare") or ""
        func = (m.group("func") or "").removeprefix("async ").removeprefix("new ")
        file, line = loc, None
        parts = loc.rsplit(":", 2)
        if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            file, line = parts[0], int(parts[1])
        elif len(parts) >= 2 and parts[-1].isdigit():
            file, line = loc.rsplit(":", 1)[0], int(parts[-1])
        if not func:
            return Frame(file, "", file, line, line_no)
        module, function = _split_qualified(func) if " " not in func else ("", func)
        return Frame(function, module, file, line, line_no)
    # ruby
    file, func = m.group("file"), m.group("func")
    if "#" in func or "." in func.split(" ")[-1]:
        target = func.split(" ")[-1]
        module, _, function = target.rpartition("#") if "#" in target else target.rpartition(".")
        return Frame(function, module, file, int(m.group("line")), line_no)
    return Frame(func, "", file, int(m.group("line")), line_no)


def _classify_frame(body: str) -> tuple[str, re.Match] | None:
    if body.startswith("at "):
        m = _JAVA_FRAME_RE.match(body)
        if m and " " not in m.group("func") and (
                re.search(r"\.(?:java|kt|scala|groovy|clj|cs):\d+$", m.group("loc"))
                or m.group("loc") in ("Native Method", "Unknown Source", "")
                or _DOTNET_LOC_RE.match(m.group("rest") or "")
                or m.group("loc").endswith((".java", ".kt", ".scala"))):
            return "java", m
        m = _JS_FRAME_RE.match(body)
        if m:
            return "javascript", m
        m = _JAVA_FRAME_RE.match(body)
        if m:
            return "java", m
        return None
    if ":in " in body:
        m = _RUBY_FRAME_RE.match(body)
        if m:
            return "ruby", m
    return None


def _find_header(bodies: list[str], first_frame: int, floor: int,
                 accept: Callable[[str], tuple[str, str, str | None] | None]):
    """Look up to 8 lines above a trace's first frame for the line naming the exception."""
    between: list[str] = []
    for i in range(first_frame - 1, max(floor, first_frame - 9) - 1, -1):
        body = bodies[i]
        found = accept(body) if body else None
        if found:
            type_, msg, code = found
            message = "\n".join([msg] + [b for b in reversed(between) if b]).strip()
            return i, type_, message, code
        if _classify_frame(body) or _PY_START_RE.search(body):
            break
        between.append(body)
    return None


def _java_header(body: str):
    m = _HEADER_RE.match(body)
    if m:
        type_ = m.group("type")
        if "." in type_ or _EXC_SUFFIX_RE.search(type_) or m.group("code") or type_ == "Error":
            return type_, m.group("msg") or "", m.group("code")
    loose = _LOOSE_EXC_RE.search(body)
    if loose:
        return loose.group("type"), loose.group("msg") or "", None
    return None


def _ruby_header(body: str):
    for regex in (_RUBY_HEADER_RE, _RUBY_MSG_TYPE_RE):
        m = regex.match(body)
        if m:
            return m.group("type"), m.group("msg"), None
    return _java_header(body)


class _TraceParser:
    def __init__(self, lines: Sequence[str]):
        self.lines = lines
        self.bodies = [_body(line[:MAX_NORMALISED_LINE]) for line in lines]
        self.traces: list[StackTrace] = []
        self.floor = 0  #: first line not yet claimed by a trace

    def parse(self) -> list[StackTrace]:
        i, n = 0, len(self.lines)
        while i < n:
            body = self.bodies[i]
            if not body:
                i += 1
                continue
            if _PY_START_RE.search(body):
                i = self._python(i)
            elif _GO_PANIC_RE.match(body) or _GO_GOROUTINE_RE.match(body):
                i = self._go(i)
            elif (kind := _classify_frame(body)) is not None:
                i = self._frames(i, kind[0])
            else:
                i += 1
        return self.traces

    def _indent(self, i: int) -> int:
        rest = strip_prefix(self.lines[i])
        return len(rest) - len(rest.lstrip())

    # Python: "Traceback" line, File lines with their source lines, the exception line.
    def _python(self, start: int) -> int:
        trace = StackTrace("python", start_line=start + 1)
        chained = start >= 2 and any(self.bodies[j] in _PY_CHAIN for j in range(start - 2, start))
        if chained and self.traces and self.traces[-1].language == "python":
            trace.caused_by = self.traces[-1]
        i, n = start + 1, len(self.lines)
        frame_indent = None
        while i < n and i - start < 5000:
            body = self.bodies[i]
            m = _PY_FRAME_RE.match(body)
            if m:
                file = m.group("file")
                trace.frames.append(Frame((m.group("func") or "").strip(), _python_module(file),
                                          file, int(m.group("line")), i + 1))
                frame_indent = self._indent(i)
                i += 1
                continue
            if not body:
                break
            if frame_indent is not None and self._indent(i) > frame_indent:
                i += 1  # source line or ~~~^^^ marker
                continue
            exc = _PY_EXC_RE.match(body)
            if exc:
                trace.exception, trace.header_line = exc.group("type"), i + 1
                message = [exc.group("msg") or ""]
                i += 1
                while i < n and self.bodies[i] and len(message) < 30 \
                        and not _PY_START_RE.search(self.bodies[i]) \
                        and self.bodies[i] not in _PY_CHAIN \
                        and strip_prefix(self.lines[i]) == self.lines[i]:
                    message.append(self.bodies[i])
                    i += 1
                trace.message = "\n".join(message).strip()
            break
        trace.end_line = max(i, start + 1)
        self.traces.append(trace)
        self.floor = i
        return max(i, start + 1)

    # Java / JavaScript / Ruby / .NET: a run of "at …" (or "from …:in") frame lines.
    def _frames(self, start: int, kind: str) -> int:
        accept = _ruby_header if kind == "ruby" else _java_header
        trace = StackTrace(kind, start_line=start + 1)
        header = _find_header(self.bodies, start, self.floor, accept)
        if header:
            h, trace.exception, trace.message, trace.code = header
            trace.header_line, trace.start_line = h + 1, h + 1
        if kind == "ruby":
            first = _RUBY_FRAME_RE.match(self.bodies[start])
            rest = _RUBY_TRAILING_TYPE_RE.match(first.group("rest")) if first else None
            if rest:
                trace.exception, trace.message = rest.group("type"), rest.group("msg")
                trace.header_line = start + 1
        self.traces.append(trace)
        top = trace
        i, n = start, len(self.lines)
        while i < n and i - start < 5000:
            body = self.bodies[i]
            found = _classify_frame(body) if body else None
            if found is not None and found[0] in (kind, "javascript" if kind == "java" else kind):
                trace.frames.append(_frame_of(found[0], found[1], i + 1))
                i += 1
                continue
            if _JAVA_MORE_RE.match(body):
                i += 1
                continue
            cause = _JAVA_CAUSE_RE.match(body)
            if cause and kind in ("java", "javascript"):
                parsed = _java_header(cause.group("rest"))
                new = StackTrace(trace.language, start_line=i + 1, header_line=i + 1)
                if parsed:
                    new.exception, new.message, new.code = parsed
                trace.end_line = i
                if cause.group("kind") == "Caused by":
                    trace.caused_by = new
                self.traces.append(new)
                trace = new
                i += 1
                continue
            break
        trace.end_line = i
        top.end_line = top.end_line or i
        if kind == "java" and any(f.file.endswith(".cs") for f in top.frames):
            top.language = "dotnet"
        self.floor = i
        return max(i, start + 1)

    # Go: "panic: …" / "fatal error: …", then "goroutine N [state]:" blocks of func + file lines.
    def _go(self, start: int) -> int:
        i, n = start, len(self.lines)
        panic = None
        m = _GO_PANIC_RE.match(self.bodies[i])
        if m:
            panic = (m.group("type"), m.group("msg"), i + 1)
            i += 1
            while i < n and i - start < 20 and not _GO_GOROUTINE_RE.match(self.bodies[i]):
                i += 1
            if i >= n or i - start >= 20:
                trace = StackTrace("go", panic[0], panic[1], start_line=start + 1,
                                   end_line=start + 1, header_line=start + 1)
                self.traces.append(trace)
                return start + 1
        while i < n and _GO_GOROUTINE_RE.match(self.bodies[i]):
            trace = StackTrace("go", start_line=(panic[2] if panic else i + 1))
            if panic:
                trace.exception, trace.message, trace.header_line = panic
                panic = None
            i += 1
            while i + 1 < n:
                file_match = _GO_FILE_RE.match(self.bodies[i + 1])
                if not self.bodies[i] or not file_match or not self._indent(i + 1):
                    break
                func = _go_function(self.bodies[i])
                trace.frames.append(_go_frame(func, file_match.group("file"),
                                              int(file_match.group("line")), i + 1))
                i += 2
            trace.end_line = i
            self.traces.append(trace)
            while i < n and not self.bodies[i]:
                i += 1
        self.floor = i
        return max(i, start + 1)


def parse_stack_traces(text: str | Sequence[str]) -> list[StackTrace]:
    """Every stack trace in a paste, in order; ``Caused by`` sections are traces of their own
    (linked from the trace they caused through :attr:`StackTrace.caused_by`)."""
    lines = _lines(text) if isinstance(text, str) else list(text)
    if not _may_hold_trace("\n" + "\n".join(lines)):
        return []
    return _TraceParser(lines).parse()


_EXC_SUFFIXES = r"(?:Exception|Error|Timeout|Fault|Failure|Panic|Interrupt|Violation|Throwable)"
#: A fast first look for lines that may name an exception.
_EXC_WORD_RE = re.compile(_EXC_SUFFIXES + r"(?![\w$])")
#: An exception named in a log line: ``… failed: java.net.SocketTimeoutException: Read timed out``.
_LOOSE_EXC_RE = re.compile(
    r"(?<![\w.$])(?P<type>(?:[A-Za-z_$][\w$]*+\.)*+[A-Z][\w$]*?"
    r"(?:Exception|Error|Timeout|Fault|Failure|Panic|Interrupt|Violation|Throwable))"
    r"(?![\w$])(?::[ \t]*+(?P<msg>.*))?")


@dataclass(frozen=True)
class ExceptionMention:
    type: str
    message: str
    line: int  #: 1-based
    trace: StackTrace | None = None


def find_exceptions(lines: Sequence[str], traces: Sequence[StackTrace]) -> list[ExceptionMention]:
    """Exceptions of the traces plus exceptions named in single log lines."""
    out = [ExceptionMention(t.exception, t.message, t.header_line or t.start_line, t)
           for t in traces if t.exception]
    taken = {m.line for m in out}
    for t in traces:  # frame and source lines name functions, not exceptions
        taken.update(range(t.start_line, t.end_line + 1))
    for n, line in enumerate(lines, 1):
        if n in taken or not _EXC_WORD_RE.search(line):
            continue
        for m in _LOOSE_EXC_RE.finditer(line[:MAX_NORMALISED_LINE]):
            out.append(ExceptionMention(m.group("type"), (m.group("msg") or "").strip(), n))
    return out


# --------------------------------------------------------------------------------------------
# Error tokens (for search and similar incidents)

_ERRNO = ("ECONNRESET ECONNREFUSED ECONNABORTED ETIMEDOUT EPIPE ENOENT EACCES EPERM EADDRINUSE "
          "EADDRNOTAVAIL EHOSTUNREACH EHOSTDOWN ENETUNREACH ENETDOWN EMFILE ENFILE ENOSPC ENOMEM "
          "EAGAIN EWOULDBLOCK EEXIST EISDIR ENOTDIR EBADF EINVAL EIO EROFS ECANCELED EAI_AGAIN "
          "ENOTFOUND ESRCH EDQUOT ENOTCONN ESHUTDOWN EPROTO ENOTEMPTY EBUSY EDEADLK EINTR "
          "EOVERFLOW")
_K8S = ("OOMKilled CrashLoopBackOff ImagePullBackOff ErrImagePull Evicted FailedScheduling "
        "FailedMount DeadlineExceeded BackOff Unhealthy NodeNotReady ContainerCannotRun "
        "CreateContainerConfigError InvalidImageName FailedCreatePodSandBox")
_GRPC = ("DEADLINE_EXCEEDED RESOURCE_EXHAUSTED PERMISSION_DENIED UNAUTHENTICATED UNAVAILABLE "
         "FAILED_PRECONDITION DATA_LOSS UNIMPLEMENTED ALREADY_EXISTS")
_CODE_WORDS = frozenset(_ERRNO.split() + _K8S.split() + _GRPC.split())
#: Words that may be codes: ECONNRESET, OOMKilled, ERR_ASSERTION, SIGSEGV, ORA-00060, …
_WORD_RE = re.compile(r"(?<![\w-])[A-Za-z][A-Za-z0-9_]{2,40}+(?:-\d{5})?(?![\w-])")
_CODE_PREFIX_RE = re.compile(r"ERR_[A-Z0-9_]{3,40}|ORA-\d{5}"
                             r"|SIG(?:SEGV|KILL|TERM|ABRT|BUS|ILL|FPE|PIPE|HUP|QUIT)")
_OTHER_CODE_RE = re.compile(r"SQLSTATE\[?\s?[0-9A-Z]{5}\]?|errno[ =]\d{1,4}\b"
                            r"|exit (?:code|status) \d{1,3}\b")
_PHRASES = ("connection reset by peer", "connection refused", "broken pipe", "i/o timeout",
            "context deadline exceeded", "context canceled", "too many open files",
            "no space left on device", "out of memory", "deadlock detected",
            "certificate has expired", "no route to host", "name or service not known",
            "read timed out", "connect timed out")
_HTTP_RES = (
    re.compile(r"HTTP(?:/\d(?:\.\d)?)?\"?[ \t]++([45]\d\d)\b"),
    re.compile(r"(?:status|status_code|statusCode|code|http_status)\"?[=:][ \t]?\"?([45]\d\d)\b"),
    re.compile(r"\b([45]\d\d) (?:Internal Server Error|Bad Gateway|Service Unavailable|Gateway "
               r"Timeout|Bad Request|Unauthorized|Forbidden|Not Found|Too Many Requests|Conflict"
               r"|Payload Too Large)"),
)


def error_tokens(text: str | Sequence[str] | Paste) -> list[str]:
    """Exception names, errno-like codes (``ECONNRESET``, ``OOMKilled``) and HTTP errors, in the
    order they first appear, without duplicates: ``["java.lang.NullPointerException",
    "ECONNRESET", "HTTP 503"]``."""
    if not isinstance(text, Paste):
        text = Paste(text if isinstance(text, str) else "\n".join(text))
    paste = text
    joined = paste.joined
    found: dict[str, int] = {}

    def add(token: str, pos: int) -> None:
        if token and (token not in found or pos < found[token]):
            found[token] = pos

    for mention in paste.exceptions:
        add(mention.type, paste.offset(mention.line))
    for m in _WORD_RE.finditer(joined):
        word = m.group(0)
        if word in _CODE_WORDS:
            add(word, m.start())
        elif word.startswith(("ERR_", "SIG", "ORA")):
            code = _CODE_PREFIX_RE.fullmatch(word)
            if code:
                add(word, m.start())
    for m in _OTHER_CODE_RE.finditer(joined):
        add(m.group(0), m.start())
    lowered = joined.lower() if joined.isascii() else None
    for phrase in _PHRASES:
        pos = lowered.find(phrase) if lowered is not None else -1
        if lowered is None:
            m = re.search(re.escape(phrase), joined, re.IGNORECASE)
            pos = m.start() if m else -1
        if pos >= 0:
            add(phrase, pos)
    for regex in _HTTP_RES:
        for m in regex.finditer(joined):
            add(f"HTTP {m.group(1)}", m.start())
    tokens = sorted(found, key=lambda t: found[t])
    # "PoolTimeout" adds nothing next to "psycopg_pool.PoolTimeout"
    qualified = {_short_type(t) for t in tokens if "." in t}
    return [t for t in tokens if "." in t or t not in qualified or not t[:1].isupper()]


# --------------------------------------------------------------------------------------------
# Compiled patterns

LINE_KINDS = ("literal", "regex", "template")
TRACE_KINDS = ("exception", "frames")
_GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass(frozen=True, eq=False)
class CompiledPattern:
    kind: str
    label: str  #: "regex: …": how evidence names the pattern
    regex: str | None = None  #: RE2 source (line kinds, and an exception's message)
    compiled: Any = None  #: re2 regexp (line kinds)
    exc_type: str | None = None
    exc_message: Any = None  #: re2 regexp of the message template, or None
    frames: tuple[tuple[str, Any], ...] = ()  #: ("any"|"one"|"glob", re2 regexp or None)
    literals: tuple[str, ...] | None = None  #: literal text it requires (None: ask the regex)
    value: str = ""  #: a regex as written

    @functools.cached_property
    def anchors(self) -> tuple[str, ...]:
        """Literal text the pattern requires (for the too-broad guard and ranking)."""
        if self.literals is not None:
            return self.literals
        return _regex_anchors(self.value) if self.kind == "regex" else ()

    @functools.cached_property
    def anchor(self) -> int:
        """Length of the longest literal text the pattern requires."""
        return max((len(a.strip()) for a in self.anchors), default=0)

    def type_matches(self, found: str) -> bool:
        wanted = self.exc_type or ""
        if _GLOB_CHARS.search(wanted):
            glob = _glob_regex(wanted)
            return bool(glob.fullmatch(found) or glob.fullmatch(_short_type(found)))
        if found == wanted:
            return True
        a, b = (found, wanted) if len(found) > len(wanted) else (wanted, found)
        return _short_type(a) == _short_type(b) and any(a.endswith(sep + b) for sep in ".:$/")


def _label(kind: str, value: str) -> str:
    value = " ".join(str(value).split())
    if len(value) > 200:
        value = value[:199] + "…"
    return f"{kind}: {value}"


@functools.lru_cache(maxsize=4096)
def _glob_regex(glob: str):
    parts = []
    for ch in glob:
        parts.append(".*" if ch == "*" else "." if ch == "?" else re2.escape(ch))
    return re2.compile("".join(parts), _RE2_OPTIONS)


def _regex_anchors(source: str) -> tuple[str, ...]:
    """Literal runs a regex requires (best effort; used by the too-broad guard).

    Parsed with Python's own regex parser: runs of literal characters in the top-level
    sequence (and in plain groups) are required; anything under a repetition or an
    alternation is not. RE2-only syntax falls back to a rough scan of the source.
    """
    runs: list[str] = []
    current: list[str] = []

    def walk(items) -> None:
        nonlocal current
        for op, arg in items:
            if op is _sre.LITERAL:
                current.append(chr(arg))
            elif op is _sre.SUBPATTERN and arg[-1] is not None:
                walk(arg[-1])  # a plain group: its literals are required too
            else:
                if current:
                    runs.append("".join(current))
                current = []

    try:
        walk(_sre_parse.parse(source))
    except Exception:  # noqa: BLE001 - \pL, \C, deep nesting…: a rough scan will do
        text = re.sub(r"\\[pP]\{?\w+\}?|\[[^\]]*\]|\\.|[.^$*+?(){}|]", "\x00", source)
        return tuple(part for part in text.split("\x00") if part)
    if current:
        runs.append("".join(current))
    return tuple(runs)


def compile_pattern(pattern: dict | str) -> CompiledPattern:
    """Compile one pattern mapping of a signature. Raises :class:`PatternError`."""
    if isinstance(pattern, str):
        pattern = {"kind": "literal", "value": pattern}
    if not isinstance(pattern, dict):
        raise PatternError("must be a mapping with kind and value")
    kind = str(pattern.get("kind") or "literal").strip().lower()
    value = pattern.get("value")
    case_sensitive = pattern.get("case_sensitive")
    if case_sensitive is not None and not isinstance(case_sensitive, bool):
        raise PatternError("case_sensitive must be true or false")
    if kind in LINE_KINDS:
        if value is None or isinstance(value, (list, dict)) or str(value).strip() == "":
            raise PatternError("value must be non-empty text")
        value = str(value)
        if len(value) > MAX_PATTERN_LENGTH:
            raise PatternError(f"is {len(value):,} characters long; the limit is "
                               f"{MAX_PATTERN_LENGTH:,}")
    if kind == "literal":
        sensitive = bool(case_sensitive) if case_sensitive is not None else False
        source = ("" if sensitive else "(?i)") + re2.escape(value)
        return CompiledPattern(kind, _label(kind, value), source, _compile_re2(source),
                               literals=(value,))
    if kind == "regex":
        source = value if case_sensitive is not False else "(?i)" + value
        try:
            compiled = _compile_re2(source)
        except PatternError as exc:
            raise PatternError(f"is not a regular expression RE2 can run: {exc}") from None
        if compiled.search("") is not None:
            raise PatternError("matches an empty line, so it would match every line")
        return CompiledPattern(kind, _label(kind, value), source, compiled, value=value)
    if kind == "template":
        template = compile_template(value, case_sensitive is not False)
        try:
            compiled = _compile_re2(template.regex)
        except PatternError as exc:
            raise PatternError(f"cannot be compiled: {exc}") from None
        return CompiledPattern(kind, _label(kind, value), template.regex, compiled,
                               literals=template.literals)
    if kind == "exception":
        raw_type = pattern.get("type") or value
        if isinstance(raw_type, (list, dict)) or not str(raw_type or "").strip():
            raise PatternError("an exception pattern needs a type")
        exc_type = str(raw_type).strip()
        if len(exc_type) > 500 or any(ch.isspace() for ch in exc_type):
            raise PatternError(f"{exc_type[:80]!r} is not an exception type name")
        message = pattern.get("message")
        exc_message, anchors = None, [exc_type.lstrip("*")]
        label = exc_type
        if message not in (None, ""):
            try:
                template = compile_template(str(message), case_sensitive is not False)
            except PatternError as exc:
                raise PatternError(f"message {exc}") from None
            exc_message = _compile_re2(template.regex)
            anchors.extend(template.literals)
            label = f"{exc_type}: {message}"
        return CompiledPattern(kind, _label(kind, label), None, None, exc_type=exc_type,
                               exc_message=exc_message, literals=tuple(anchors))
    if kind == "frames":
        globs = value
        if isinstance(globs, str):
            globs = [g for g in globs.splitlines() if g.strip()]
        if not isinstance(globs, list) or not globs:
            raise PatternError("a frames pattern needs a list of frame globs")
        frames, anchors = [], []
        for n, glob in enumerate(globs, 1):
            if isinstance(glob, (list, dict)) or str(glob).strip() == "":
                raise PatternError(f"frame {n} must be a non-empty glob")
            glob = str(glob).strip()
            if len(glob) > 1000:
                raise PatternError(f"frame {n} is longer than 1,000 characters")
            if glob == "*":
                frames.append(("any", None))
            elif glob == "?":
                frames.append(("one", None))
            else:
                frames.append(("glob", _glob_regex(glob)))
                anchors.extend(p for p in re.split(r"[*?\[\]]", glob) if p)
        if not any(kind_ == "glob" for kind_, _ in frames):
            raise PatternError("needs at least one frame glob besides * and ?")
        return CompiledPattern(kind, _label(kind, " › ".join(str(g).strip() for g in globs)),
                               frames=tuple(frames), literals=tuple(anchors))
    raise PatternError(f"kind {kind!r} is not one of {', '.join(LINE_KINDS + TRACE_KINDS)}")


def _compile_all(front_matter: dict) -> tuple[dict[str, list[CompiledPattern]],
                                                list[tuple[str, str]]]:
    compiled: dict[str, list[CompiledPattern]] = {"patterns": [], "not": []}
    errors = []
    for field_name in ("patterns", "not"):
        patterns = front_matter.get(field_name) or []
        if not isinstance(patterns, list):
            errors.append((field_name, "must be a list of {kind, value} mappings"))
            continue
        for n, pattern in enumerate(patterns, 1):
            try:
                compiled[field_name].append(compile_pattern(pattern))
            except PatternError as exc:
                kind = pattern.get("kind", "literal") if isinstance(pattern, dict) else "literal"
                errors.append((field_name, f"pattern {n} ({kind}) {exc}"))
    return compiled, errors


def pattern_errors(front_matter: dict) -> list[tuple[str, str]]:
    """``[(field, message)]`` for every pattern of a signature that cannot be compiled.

    For validation on save: ``documents.validate`` turns each into a ``FieldError``.
    """
    return _compile_all(front_matter)[1]


# --------------------------------------------------------------------------------------------
# Signatures


@dataclass(frozen=True)
class CompiledSignature:
    id: str
    title: str
    slug: str
    status: str
    mode: str  #: all | any
    patterns: tuple[CompiledPattern, ...]
    nots: tuple[CompiledPattern, ...]
    incidents: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return self.status != "retired"


def _fields(doc) -> tuple[str, str, str, str, dict]:
    """(id, title, slug, status, front matter) of a Document, a DocumentRow or a mapping."""
    if isinstance(doc, dict):
        fm = doc
        return (str(fm.get("id") or ""), str(fm.get("title") or ""), str(fm.get("slug") or ""),
                str(fm.get("status") or "active"), fm)
    fm = getattr(doc, "front_matter", None) or {}
    status = getattr(doc, "status", None) or fm.get("status") or "active"
    slug = getattr(doc, "slug", None) or fm.get("slug") or ""
    return str(doc.id), str(getattr(doc, "title", "") or fm.get("title") or ""), str(slug), \
        str(status), fm


def compile_signature(doc) -> CompiledSignature:
    """Compile every pattern of a signature. Raises :class:`SignatureError` listing problems."""
    ident, title, slug, status, fm = _fields(doc)
    compiled, errors = _compile_all(fm)
    problems = [f"{field_name}: {message}" for field_name, message in errors]
    if not fm.get("patterns"):
        problems.insert(0, "patterns: a signature needs at least one pattern")
    if problems:
        raise SignatureError(problems)
    mode = str(fm.get("match") or "all").lower()
    return CompiledSignature(
        ident, title, slug, status, mode if mode in ("all", "any") else "all",
        tuple(compiled["patterns"]), tuple(compiled["not"]), tuple(fm.get("incidents") or ()))


# --------------------------------------------------------------------------------------------
# Pastes


def decode_paste(data: str | bytes) -> str:
    """Bytes → text (UTF-8, bad bytes replaced); text with lone surrogates made encodable."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        text = bytes(data).decode("utf-8", "replace")
    else:
        text = str(data)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = text.encode("utf-8", "replace").decode("utf-8")
    if text.startswith("\ufeff"):
        text = text[1:]
    return text


def _lines(text: str) -> list[str]:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()
    return lines


class Paste:
    """What someone pasted, split into lines (ANSI codes removed) with traces parsed lazily."""

    def __init__(self, data: str | bytes):
        self.text = strip_ansi(decode_paste(data))
        self.lines = _lines(self.text)

    @property
    def empty(self) -> bool:
        return not self.text.strip()

    @functools.cached_property
    def traces(self) -> list[StackTrace]:
        return parse_stack_traces(self.lines)

    @functools.cached_property
    def exceptions(self) -> list[ExceptionMention]:
        return find_exceptions(self.lines, self.traces)

    def line(self, number: int) -> str:
        return self.lines[number - 1] if 0 < number <= len(self.lines) else ""

    @functools.cached_property
    def joined(self) -> str:
        """The lines joined with ``\\n`` (offsets in it map to lines through :meth:`offset`)."""
        return "\n".join(self.lines)

    @functools.cached_property
    def _starts(self) -> list[int]:
        starts, pos = [], 0
        for line in self.lines:
            starts.append(pos)
            pos += len(line) + 1
        return starts

    def offset(self, number: int) -> int:
        """Offset in :attr:`joined` where line ``number`` (1-based) starts."""
        return self._starts[number - 1] if 0 < number <= len(self.lines) else 0


# --------------------------------------------------------------------------------------------
# Matching


@dataclass(frozen=True)
class Evidence:
    line: int  #: 1-based
    text: str  #: the line (cut to MAX_EVIDENCE_TEXT characters around the match)
    pattern: str  #: label of the pattern
    pattern_index: int  #: 0-based index in the signature's ``patterns``
    span: tuple[int, int] | None = None  #: matched part of ``text``

    def to_json(self) -> dict:
        return {"line": self.line, "text": self.text, "pattern": self.pattern}


@dataclass
class SignatureMatch:
    id: str
    title: str
    slug: str
    confidence: str  #: confirmed | partial
    evidence: list[Evidence]
    matched: list[int]  #: indexes of the patterns that matched
    total: int  #: number of patterns
    mode: str
    incidents: tuple[str, ...] = ()
    missing: list[str] = field(default_factory=list)  #: labels of patterns that did not match
    hits: int = 0  #: lines matched in all, evidence beyond the cap included
    score: tuple = ()

    @property
    def kind(self) -> str:
        return "signature"

    def to_json(self, url: str | None = None) -> dict:
        return {"id": self.id, "title": self.title, "url": url, "confidence": self.confidence,
                "evidence": [e.to_json() for e in self.evidence]}


@dataclass
class MatchResult:
    matches: list[SignatureMatch]  #: confirmed first, then partial
    lines: int
    paste: Paste | None = None

    @property
    def confirmed(self) -> list[SignatureMatch]:
        return [m for m in self.matches if m.confidence == "confirmed"]

    @property
    def partial(self) -> list[SignatureMatch]:
        return [m for m in self.matches if m.confidence == "partial"]


def _evidence_text(line: str, span: tuple[int, int] | None) -> tuple[str, tuple[int, int] | None]:
    if len(line) <= MAX_EVIDENCE_TEXT:
        return line, span
    start = 0
    if span:
        start = max(0, min(span[0] - 200, len(line) - MAX_EVIDENCE_TEXT))
    text = line[start:start + MAX_EVIDENCE_TEXT]
    if span:
        span = (span[0] - start, min(span[1] - start, len(text)))
    return text, span


def _frames_match(spec: tuple[tuple[str, Any], ...], frames: Sequence[Frame]) -> list[int] | None:
    """Indexes of the frames matched by the globs of ``spec`` (first match), or None.

    ``*`` is any number of frames, ``?`` exactly one; the sequence may start and end anywhere.
    """
    spec = tuple(s for i, s in enumerate(spec) if not (s[0] == "any" and i in (0, len(spec) - 1)))
    p_len, f_len = len(spec), len(frames)
    names = [None] * f_len

    def frame_ok(p: int, f: int) -> bool:
        if names[f] is None:
            names[f] = frames[f].names()
        regex = spec[p][1]
        return any(regex.fullmatch(n) for n in names[f])

    # can[p][f]: spec[p:] matches frames starting at f (anything may follow).
    can = [[False] * (f_len + 1) for _ in range(p_len + 1)]
    for f in range(f_len + 1):
        can[p_len][f] = True
    for p in range(p_len - 1, -1, -1):
        kind = spec[p][0]
        for f in range(f_len, -1, -1):
            if kind == "any":
                can[p][f] = can[p + 1][f] or (f < f_len and can[p][f + 1])
            elif f < f_len:
                can[p][f] = can[p + 1][f + 1] and (kind == "one" or frame_ok(p, f))
    for start in range(f_len + 1):
        if can[0][start]:
            out, p, f = [], 0, start
            while p < p_len:
                kind = spec[p][0]
                if kind == "any":
                    if can[p + 1][f]:
                        p += 1
                    else:
                        f += 1
                    continue
                if kind == "glob":
                    out.append(f)
                p, f = p + 1, f + 1
            return out
    return None


class _Snapshot:
    """An immutable compiled view of a set of signatures: the RE2 set(s) and the lookups."""

    def __init__(self, signatures: Sequence[CompiledSignature], max_mem: int = 256 << 20):
        self.signatures = list(signatures)
        #: set index → (signature index, pattern index, negated)
        self.line_patterns: list[tuple[int, int, bool]] = []
        sources: list[str] = []
        #: exception patterns by short type name, plus the ones whose type is a glob
        self.exceptions: dict[str, list[tuple[int, int, bool]]] = {}
        self.exception_globs: list[tuple[int, int, bool]] = []
        self.frames: list[tuple[int, int, bool]] = []
        for s, sig in enumerate(self.signatures):
            for negated, patterns in ((False, sig.patterns), (True, sig.nots)):
                for p, pattern in enumerate(patterns):
                    ref = (s, p, negated)
                    if pattern.kind in LINE_KINDS:
                        self.line_patterns.append(ref)
                        sources.append(pattern.regex)
                    elif pattern.kind == "exception":
                        if _GLOB_CHARS.search(pattern.exc_type):
                            self.exception_globs.append(ref)
                        else:
                            key = _short_type(pattern.exc_type)
                            self.exceptions.setdefault(key, []).append(ref)
                    else:
                        self.frames.append(ref)
        self.sets = self._build_sets(sources, max_mem)

    @staticmethod
    def _build_sets(sources: list[str], max_mem: int) -> list[tuple[Any, int]]:
        """One RE2 set; split in halves (recursively) if RE2 runs out of memory building it."""
        if not sources:
            return []

        def build(offset: int, chunk: list[str]) -> list[tuple[Any, int]]:
            pattern_set = re2.Set.SearchSet(_options(max_mem=max_mem))
            for source in chunk:
                pattern_set.Add(source)
            try:
                pattern_set.Compile()
                return [(pattern_set, offset)]
            except re2.error:
                if len(chunk) == 1:
                    raise
                half = len(chunk) // 2
                log.warning("RE2 set of %d patterns too large; splitting it", len(chunk))
                return build(offset, chunk[:half]) + build(offset + half, chunk[half:])

        return build(0, sources)

    def pattern(self, ref: tuple[int, int, bool]) -> CompiledPattern:
        sig = self.signatures[ref[0]]
        return (sig.nots if ref[2] else sig.patterns)[ref[1]]

    def match(self, paste: Paste, max_partial: int = MAX_PARTIAL) -> MatchResult:
        # hits[(s, p, negated)] = [count, [(line, span)]]
        hits: dict[tuple[int, int, bool], list] = {}

        def record(ref, line_no: int, span) -> None:
            entry = hits.get(ref)
            if entry is None:
                entry = hits[ref] = [0, []]
            entry[0] += 1
            if len(entry[1]) < MAX_EVIDENCE_PER_PATTERN:
                entry[1].append((line_no, span))

        line_patterns = self.line_patterns
        for pattern_set, offset in self.sets:
            set_match = pattern_set.Match
            for n, line in enumerate(paste.lines, 1):
                if not line:
                    continue
                found = set_match(line)
                if not found:
                    continue
                for index in found:
                    ref = line_patterns[offset + index]
                    m = self.pattern(ref).compiled.search(line)
                    if m is not None:  # the set said so; the pattern confirms and gives the span
                        record(ref, n, m.span())
        if (self.exceptions or self.exception_globs) and paste.exceptions:
            for mention in paste.exceptions:
                refs = self.exceptions.get(_short_type(mention.type), []) + self.exception_globs
                for ref in refs:
                    pattern = self.pattern(ref)
                    if not pattern.type_matches(mention.type):
                        continue
                    if pattern.exc_message is not None and \
                            pattern.exc_message.search(mention.message) is None:
                        continue
                    line = paste.line(mention.line)
                    pos = line.find(_short_type(mention.type))
                    record(ref, mention.line,
                           (pos, pos + len(_short_type(mention.type))) if pos >= 0 else None)
        if self.frames and paste.traces:
            for ref in self.frames:
                pattern = self.pattern(ref)
                for trace in paste.traces:
                    matched = _frames_match(pattern.frames, trace.frames)
                    if matched is not None:
                        for f in matched:
                            record(ref, trace.frames[f].text_line, None)
                        break
        return self._result(paste, hits, max_partial)

    def _result(self, paste: Paste, hits: dict, max_partial: int) -> MatchResult:
        by_signature: dict[int, dict] = {}
        for (s, p, negated), entry in hits.items():
            by_signature.setdefault(s, {}).setdefault(negated, {})[p] = entry
        confirmed, partial = [], []
        for s, groups in by_signature.items():
            sig = self.signatures[s]
            if groups.get(True):
                continue  # a `not` pattern matched: ruled out
            positive = groups.get(False) or {}
            if not positive:
                continue
            matched = sorted(positive)
            complete = sig.mode == "any" or len(matched) == len(sig.patterns)
            evidence = []
            for p in matched:
                label = sig.patterns[p].label
                for line_no, span in positive[p][1]:
                    text, span = _evidence_text(paste.line(line_no), span)
                    evidence.append(Evidence(line_no, text, label, p, span))
            evidence.sort(key=lambda e: (e.line, e.pattern_index))
            count = sum(entry[0] for entry in positive.values())
            anchor = sum(sig.patterns[p].anchor for p in matched)
            score = (len(matched) / len(sig.patterns), len(matched), anchor, count)
            found = SignatureMatch(
                sig.id, sig.title, sig.slug, "confirmed" if complete else "partial", evidence,
                matched, len(sig.patterns), sig.mode, sig.incidents,
                [pat.label for i, pat in enumerate(sig.patterns) if i not in positive],
                count, score)
            (confirmed if complete else partial).append(found)
        key = lambda m: (tuple(-x for x in m.score), m.id)  # noqa: E731
        confirmed.sort(key=key)
        partial.sort(key=key)
        return MatchResult(confirmed + partial[:max_partial], len(paste.lines), paste)


class _OneSignature:
    """One compiled signature (whatever its status), its RE2 set built once for many texts."""

    def __init__(self, sig: CompiledSignature):
        self.sig = sig
        self.snapshot = _Snapshot([sig])
        nots = CompiledSignature(sig.id, sig.title, sig.slug, "active", "any", sig.nots, ())
        self.nots = _Snapshot([nots]) if sig.nots else None

    def match(self, text: str | Paste) -> SignatureMatch | None:
        paste = text if isinstance(text, Paste) else Paste(text)
        result = self.snapshot.match(paste)
        return result.matches[0] if result.matches else None

    def ruled_out_by(self, text: str) -> str | None:
        """Label of the first `not` pattern found in ``text``, if any."""
        if self.nots is None:
            return None
        result = self.nots.match(Paste(text))
        found = result.matches[0] if result.matches else None
        return found.evidence[0].pattern if found and found.evidence else None


def match_signature(sig: CompiledSignature, text: str | Paste) -> SignatureMatch | None:
    """Match one compiled signature (whatever its status) against a paste."""
    return _OneSignature(sig).match(text)


class SignatureIndex:
    """Every active signature compiled into one RE2 set; thread-safe, rebuilt when they change.

    Signatures come in through :meth:`rebuild` (all of them), :meth:`update` (one, saved or
    changed) and :meth:`remove`. Changes only mark the set stale: it is rebuilt once, by the
    next :meth:`match`, so a sync that changes a thousand signatures compiles the set once.
    As a listener of :class:`wiki.core.Wiki` (see :meth:`attach`) it follows saves and syncs.

    Saves made by *other* processes (several gunicorn workers, ``wiki`` on the command line)
    reach it through the database: at most every ``recheck_seconds`` a match asks for the
    signatures' ``(id, revision)`` pairs and recompiles only those that changed.
    """

    def __init__(self, loader: Callable[[], Iterable[Any]] | None = None,
                 max_mem: int = 256 << 20, recheck_seconds: float = 1.0):
        self._loader = loader  #: returns every signature when the index is first used
        self._max_mem = max_mem
        self._lock = threading.RLock()
        self._signatures: dict[str, CompiledSignature] = {}
        self._problems: dict[str, list[str]] = {}
        self._revisions: dict[str, str | None] = {}  #: id → revision of what is compiled
        self._snapshot: _Snapshot | None = None
        self._loaded = loader is None
        #: ``() → {id: revision}`` and ``(ids) → signatures``, set by :meth:`attach`
        self._revisions_of: Callable[[], dict[str, str]] | None = None
        self._fetch: Callable[[Iterable[str]], Iterable[Any]] | None = None
        self._recheck = recheck_seconds
        self._checked_at = time.monotonic()

    # -- keeping it current ------------------------------------------------------------------

    def rebuild(self, docs: Iterable[Any]) -> None:
        """Replace everything with these signatures (documents, rows or front-matter mappings)."""
        signatures, problems, revisions = {}, {}, {}
        for doc in docs:
            ident, compiled, errors = self._compile(doc)
            revisions[ident] = _revision(doc)
            if compiled is not None:
                signatures[ident] = compiled
            elif errors:
                problems[ident] = errors
        snapshot = _Snapshot([s for s in signatures.values() if s.active], self._max_mem)
        with self._lock:
            self._signatures, self._problems = signatures, problems
            self._revisions = revisions
            self._snapshot, self._loaded = snapshot, True
            self._checked_at = time.monotonic()

    def update(self, doc: Any) -> None:
        """Add or replace one signature (a retired one stops matching)."""
        ident, compiled, errors = self._compile(doc)
        with self._lock:
            self._signatures.pop(ident, None)
            self._problems.pop(ident, None)
            self._revisions[ident] = _revision(doc)
            if compiled is not None:
                self._signatures[ident] = compiled
            elif errors:
                self._problems[ident] = errors
            self._snapshot = None

    def remove(self, ident: str) -> None:
        with self._lock:
            if self._signatures.pop(ident, None) is not None:
                self._snapshot = None
            self._problems.pop(ident, None)
            self._revisions.pop(ident, None)

    def invalidate(self) -> None:
        """Forget everything; the loader is asked again on the next match."""
        with self._lock:
            if self._loader is not None:
                self._loaded = False
            self._snapshot = None

    @staticmethod
    def _compile(doc) -> tuple[str, CompiledSignature | None, list[str]]:
        ident = _fields(doc)[0]
        try:
            return ident, compile_signature(doc), []
        except SignatureError as exc:
            log.warning("signature %s is not matched: %s", ident, exc)
            return ident, None, exc.problems

    # -- listener of wiki.core.Wiki ------------------------------------------------------------

    def attach(self, wiki) -> SignatureIndex:
        """Follow a :class:`wiki.core.Wiki`: load signatures from its database, hear its saves."""
        from sqlmodel import select

        from .models import DocumentRow

        def load():
            with wiki.session() as session:
                query = select(DocumentRow).where(DocumentRow.kind == "signature")
                return list(session.exec(query))

        def revisions():
            with wiki.session() as session:
                query = select(DocumentRow.id, DocumentRow.revision).where(
                    DocumentRow.kind == "signature")
                return dict(session.exec(query).all())

        def fetch(idents):
            with wiki.session() as session:
                return list(session.exec(select(DocumentRow).where(
                    DocumentRow.kind == "signature", DocumentRow.id.in_(list(idents)))))

        with self._lock:
            self._loader = load
            self._revisions_of, self._fetch = revisions, fetch
            self._loaded = False
            self._snapshot = None
        wiki.listeners.append(self)
        return self

    def on_save(self, doc, wiki=None, **_) -> None:
        if _kind_name(doc) == "signature" and self._loaded:
            self.update(doc)

    def on_sync(self, report, wiki=None, full: bool = False) -> None:
        if not self._loaded:
            return  # loads everything on first use
        if full:
            self.invalidate()
            return
        for doc in report.changed:
            if _kind_name(doc) == "signature":
                self.update(doc)
        for ident in report.removed:
            self.remove(ident)

    # -- reading -------------------------------------------------------------------------------

    def refresh(self) -> int:
        """Take in signatures that another process saved or deleted (through the database):
        only the changed ones are compiled again. Returns how many changed."""
        if self._revisions_of is None or self._fetch is None or not self._loaded:
            return 0
        try:
            current = self._revisions_of()
        except Exception:  # noqa: BLE001 - the database is away: keep matching what we have
            log.exception("signatures: could not check for changes made elsewhere")
            return 0
        finally:
            self._checked_at = time.monotonic()
        with self._lock:
            known = dict(self._revisions)
        changed = [i for i, rev in current.items() if known.get(i, "-") != rev]
        removed = [i for i in known if i not in current]
        for doc in self._fetch(changed) if changed else ():
            self.update(doc)
        for ident in removed:
            self.remove(ident)
        return len(changed) + len(removed)

    def _current(self) -> _Snapshot:
        if self._loaded and time.monotonic() - self._checked_at >= self._recheck:
            self.refresh()
        snapshot = self._snapshot
        if snapshot is not None:
            return snapshot
        with self._lock:
            if not self._loaded and self._loader is not None:
                loader = self._loader
                self.rebuild(loader())
            if self._snapshot is None:
                active = [s for s in self._signatures.values() if s.active]
                self._snapshot = _Snapshot(active, self._max_mem)
            return self._snapshot

    def match(self, text: str | bytes | Paste, max_partial: int = MAX_PARTIAL) -> MatchResult:
        """Which active signatures this paste shows: confirmed ones first, then partial ones."""
        paste = text if isinstance(text, Paste) else Paste(text)
        return self._current().match(paste, max_partial)

    def problems(self) -> dict[str, list[str]]:
        """Signatures left out because a pattern does not compile: ``{id: [problem]}``."""
        self._current()
        with self._lock:
            return dict(self._problems)

    def __len__(self) -> int:
        return len(self._current().signatures)


def _revision(doc) -> str | None:
    """The content hash a document or row was read at (``None`` for a bare mapping)."""
    return None if isinstance(doc, dict) else getattr(doc, "revision", None)


def _kind_name(doc) -> str:
    kind = getattr(doc, "kind", None)
    return getattr(kind, "name", kind) or ""


# --------------------------------------------------------------------------------------------
# Examples are tests; the too-broad guard


def check_examples(doc) -> list[str]:
    """Problems with a signature's examples: each example must be a confirmed match of this
    signature on its own, and no ``not_examples`` entry may be. ``[]`` when all is well."""
    fm = _fields(doc)[4]
    if not fm.get("patterns"):  # a signature may describe a bug before anyone can match it
        return ["patterns: none yet, so the examples cannot match"] if fm.get("examples") else []
    try:
        sig = compile_signature(doc)
    except SignatureError as exc:
        return exc.problems
    one = _OneSignature(sig)
    problems = []
    for n, example in enumerate(fm.get("examples") or [], 1):
        found = one.match(str(example))
        if found is None or found.confidence != "confirmed":
            ruled_out = one.ruled_out_by(str(example)) if found is None else None
            if ruled_out:
                problems.append(f"example {n} is ruled out by a `not` pattern: {ruled_out}")
            elif sig.mode == "any" or found is None:
                problems.append(f"example {n} does not match: no pattern matched it")
            else:
                problems.append(f"example {n} does not match: "
                                f"{'; '.join(found.missing)} matched no line")
    for n, example in enumerate(fm.get("not_examples") or [], 1):
        found = one.match(str(example))
        if found is not None and found.confidence == "confirmed":
            where = "; ".join(f"line {e.line} by {e.pattern}" for e in found.evidence[:3])
            problems.append(f"not_example {n} matches, but must not ({where})")
    return problems


@functools.lru_cache(maxsize=1)
def load_background() -> tuple[str, ...]:
    """The background sample of ordinary log lines (``wiki/data/background.log``)."""
    try:
        text = BACKGROUND_PATH.read_text("utf-8")
        return tuple(line for line in text.splitlines() if line and not line.startswith("# "))
    except OSError:  # pragma: no cover - shipped with the package
        log.warning("background sample %s is missing", BACKGROUND_PATH)
        return ()


def breadth_warnings(doc, background_lines: Sequence[str] | None = None,
                     wiki_texts: Iterable[tuple[str, str]] | dict[str, str] = ()) -> list[str]:
    """Warnings that a signature is too broad (never errors: the author decides).

    * a line pattern matching more than 1 % of ``background_lines`` (default: the shipped
      sample of ordinary logs);
    * no literal anchor of at least 4 characters (per pattern for ``match: any``, where each
      pattern alone confirms; for the signature as a whole for ``match: all``);
    * a confirmed match in documents of the wiki (``(id, text)`` pairs) other than the
      signature itself and the postmortems it lists in ``incidents`` or ``related``.
    """
    try:
        sig = compile_signature(doc)
    except SignatureError:
        return []  # the errors are reported elsewhere
    background = list(load_background() if background_lines is None else background_lines)
    warnings = []
    if background:
        snapshot = _Snapshot([CompiledSignature(sig.id, sig.title, sig.slug, "active", "any",
                                                sig.patterns, ())])
        counts = [0] * len(sig.patterns)
        examples: list[str | None] = [None] * len(sig.patterns)
        for line in background:
            for pattern_set, offset in snapshot.sets:
                for index in pattern_set.Match(line) or ():
                    p = snapshot.line_patterns[offset + index][1]
                    counts[p] += 1
                    examples[p] = examples[p] or line
        for p, count in enumerate(counts):
            share = count / len(background)
            if share > BREADTH_LIMIT:
                sample = examples[p] if len(examples[p] or "") <= 160 else examples[p][:159] + "…"
                warnings.append(
                    f"pattern {p + 1} ({sig.patterns[p].label}) matches {count:,} of "
                    f"{len(background):,} ordinary log lines ({share:.1%}), e.g. {sample!r}")
    if sig.mode == "any":
        for p, pattern in enumerate(sig.patterns):
            if pattern.anchor < MIN_ANCHOR:
                warnings.append(f"pattern {p + 1} ({pattern.label}) has no literal text of at "
                                f"least {MIN_ANCHOR} characters; with match: any it alone "
                                f"confirms the signature")
    elif max((p.anchor for p in sig.patterns), default=0) < MIN_ANCHOR:
        warnings.append(f"no pattern has literal text of at least {MIN_ANCHOR} characters "
                        f"to anchor the signature")
    fm = _fields(doc)[4]
    linked = {sig.id, *(fm.get("incidents") or ()), *(fm.get("related") or ())}
    items = wiki_texts.items() if isinstance(wiki_texts, dict) else wiki_texts
    elsewhere = []
    one = _OneSignature(sig)
    for ident, text in items:
        if ident in linked:
            continue
        found = one.match(text)
        if found is not None and found.confidence == "confirmed":
            elsewhere.append(ident)
    if elsewhere:
        shown = ", ".join(elsewhere[:5]) + (f" and {len(elsewhere) - 5} more"
                                            if len(elsewhere) > 5 else "")
        warnings.append(f"also matches {len(elsewhere)} document(s) of the wiki it is not "
                        f"linked to: {shown}")
    return warnings


def document_texts(docs: Iterable[Any]) -> Iterator[tuple[str, str]]:
    """``(id, text)`` of documents for :func:`breadth_warnings`: the body, plus the examples of
    a signature (its most log-like text). E.g. ``document_texts(wiki.store.scan()[0].values())``.
    """
    for doc in docs:
        ident, _, _, _, fm = _fields(doc)
        examples = "\n".join(str(e) for e in fm.get("examples") or [])
        yield ident, f"{getattr(doc, 'body', '')}\n{examples}"


def normalise_text(text: str) -> list[str]:
    """Every non-blank line of a text as a template (for similarity features)."""
    return [t for t in (normalise_line(line) for line in _lines(strip_ansi(text))) if t]

