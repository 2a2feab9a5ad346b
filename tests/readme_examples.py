"""The README's fenced examples, extracted and compared with what they print.

Kinds of block, by their fence:
- ```python: a script, run as written in the examples' folder; a comment
  line right after a `print(` line shows what that print writes;
- ```text (or console) whose first line starts with `$ `: a shell session,
  each `$ ` command (a line ending in `\\` continues it) followed by what it
  prints (stdout and stderr, in order);
- ```bash: commands run as written, which must succeed;
- ```toml: must parse (a plugin's pyproject.toml fragment).

Shown output matches tolerantly: a line `...` stands for any lines, `...`
inside a line for any text; times (`12 ms`, `0.24 s`) match any time;
decimals match within 0.02 (or 10%); other words and whole numbers exactly.
An HTML comment right above a fence changes that block:
`<!-- readme-test: numbers vary -->` makes every number match any number;
`<!-- readme-test: skip: REASON -->` leaves it out, with the reason shown.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

MARKER = re.compile(r"<!--\s*readme-test:\s*(.*?)\s*-->")
NUMBER = r"-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?"
TIME = re.compile(rf"({NUMBER})(\s*(?:ms|us|s)\b)")


@dataclass
class Block:
    lang: str
    text: str
    line: int  # of the opening fence, 1-based
    markers: list[str] = field(default_factory=list)

    @property
    def skip_reason(self) -> str | None:
        for m in self.markers:
            if m.startswith("skip"):
                return m.partition(":")[2].strip()
        return None

    @property
    def numbers_vary(self) -> bool:
        return "numbers vary" in self.markers

    @property
    def kind(self) -> str:
        if self.lang in ("text", "console") and self.text.startswith("$ "):
            return "session"
        return {"python": "python", "bash": "bash", "sh": "bash", "toml": "toml"}.get(self.lang, "other")


def blocks(markdown: str) -> list[Block]:
    """Every fenced block, in order, with the readme-test markers written right above it."""
    out, lines, i = [], markdown.splitlines(), 0
    while i < len(lines):
        fence = re.match(r"^(`{3,})(\w*)\s*$", lines[i])
        if not fence:
            i += 1
            continue
        markers, j = [], i - 1
        while j >= 0 and (MARKER.fullmatch(lines[j].strip()) or not lines[j].strip()):
            if lines[j].strip():
                markers.insert(0, MARKER.fullmatch(lines[j].strip()).group(1))
            j -= 1
        end = next(k for k in range(i + 1, len(lines)) if lines[k].startswith(fence.group(1)))
        out.append(Block(fence.group(2), "\n".join(lines[i + 1:end]), i + 1, markers))
        i = end + 1
    return out


def session_steps(text: str) -> list[tuple[str, list[str]]]:
    """(command, shown output lines) for each `$ ` command of a session block."""
    steps: list[tuple[str, list[str]]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        command = lines[i][2:]
        while command.endswith("\\") and i + 1 < len(lines):
            i += 1
            command += "\n" + lines[i]
        i += 1
        shown = []
        while i < len(lines) and not lines[i].startswith("$ "):
            shown.append(lines[i])
            i += 1
        steps.append((command, shown))
    return steps


def python_shown(code: str) -> list[str]:
    """The comment lines right after `print(` lines: what the script shows it prints."""
    shown, after_print = [], False
    for line in code.splitlines():
        stripped = line.strip()
        if after_print and stripped.startswith("# "):
            shown.append(stripped[2:])
            continue
        after_print = "print(" in stripped and not stripped.startswith("#")
    return shown


def _line_pattern(shown: str, numbers_vary: bool) -> tuple[re.Pattern, list[str | None]]:
    """A regex for one shown line, and per number group the shown number (None: any)."""
    parts, expected = [], []
    pos = 0
    token = re.compile(rf"\.\.\.|{TIME.pattern}|{NUMBER}")
    for m in token.finditer(shown):
        parts.append(re.escape(shown[pos:m.start()]))
        text = m.group(0)
        if text == "...":
            parts.append(".*?")
        elif m.group(2):  # a time: any number, the same unit
            parts.append(f"({NUMBER}){re.escape(m.group(2))}")
            expected.append(None)
        else:
            parts.append(f"({NUMBER})")
            expected.append(None if numbers_vary else text)
        pos = m.end()
    parts.append(re.escape(shown[pos:]))
    return re.compile("".join(parts) + r"\s*"), expected


def _close(shown: str, got: str) -> bool:
    if re.fullmatch(r"-?\d+", shown):
        return shown == got
    a, b = float(shown), float(got)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= max(0.02, 0.1 * abs(a))


def line_matches(shown: str, got: str, numbers_vary: bool = False) -> bool:
    pattern, expected = _line_pattern(shown.rstrip(), numbers_vary)
    m = pattern.fullmatch(got.rstrip())
    return bool(m) and all(e is None or _close(e, g) for e, g in zip(expected, m.groups()))


def mismatch(shown: list[str], got: list[str], numbers_vary: bool = False) -> str | None:
    """None when `got` matches the `shown` lines, else where it first differs."""
    def match(i: int, j: int) -> bool:
        if i == len(shown):
            return j == len(got)
        if shown[i].strip() == "...":
            return any(match(i + 1, k) for k in range(j, len(got) + 1))
        return j < len(got) and line_matches(shown[i], got[j], numbers_vary) and match(i + 1, j + 1)

    if match(0, 0):
        return None
    for k, line in enumerate(shown):  # the first shown line that no printed line matches, for the message
        if line.strip() != "..." and not any(line_matches(line, g, numbers_vary) for g in got):
            return f"shown line {k + 1} {line!r} was not printed"
    return "the printed lines are not in the order shown, or there are more of them"
