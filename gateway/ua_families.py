r"""The bounded allowlists of browser and OS families a User-Agent may be generalised to.

ua-parser's generic rules copy text from the User-Agent into the family (`^(.{0,200})/(\d+)
CFNetwork`, `([A-z0-9]{1,50}[Bb]ot)`, ...), so a crafted agent such as "canary-dev-7f3a9c/1.0
CFNetwork" would carry an identifier into the output. The allowlist holds only the families the
builtin rules can produce from fixed text: a literal replacement ("ArcMap"), or a capture group
whose language is a small finite set read off the regex itself ("(Chromium|Chrome)/...",
"[Bb]ot"), substituted into the replacement template. Any other family leaves as "Other".

The regexes are read by a small parser of their own (`_Parser`, below): Python's regex syntax as
ua-parser's rules use it (groups of every kind, classes, escapes, repeats, inline flags, which
are ignored, so a case-insensitive rule allows only the spelling it names). `re.compile` judges
validity first; whatever the parser does not read as a finite set allows no family.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from itertools import product
from typing import Any

MAX_LANGUAGE = 256  # a capture with more possible texts is not a fixed name
_GROUP_REF = re.compile(r"\$(\d)")
Language = frozenset[str] | None  # None: unbounded or too large


def _union(languages: Iterable[Language]) -> Language:
    result: set[str] = set()
    for language in languages:
        if language is None:
            return None
        result |= language
        if len(result) > MAX_LANGUAGE:
            return None
    return frozenset(result)


def _concat(first: Language, second: Language) -> Language:
    if first is None or second is None or len(first) * len(second) > MAX_LANGUAGE:
        return None
    return frozenset(a + b for a, b in product(first, second))


_INFINITE = 1 << 32
_ZERO_WIDTH = frozenset({"b", "B", "A", "Z"})
_CATEGORIES = frozenset("dDwWsS")
_CONTROL = {"a": "\a", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_REPEAT = re.compile(r"\{(\d*)(,?)(\d*)\}")
_FLAGS = re.compile(r"[aiLmsux]*(?:-[imsx]+)?(?=[:)])")
_EMPTY: Language = frozenset({""})


class _UnboundedError(Exception):
    """A construct whose texts are not a small fixed set (a backreference, a conditional)."""


class _Parser:
    """Every text a regex (or one of its capture groups) can match, read off the pattern.

    `language` is the whole pattern's, `captures` maps group number -> language (None:
    unbounded or too large).
    """

    def __init__(self, pattern: str) -> None:
        self.text = pattern
        self.at = 0
        self.captures: dict[int, Language] = {}
        self.count = 0
        self.language = self._alternation()
        if self.at != len(self.text):
            raise re.error("unbalanced parenthesis")

    def _next(self) -> str:
        char = self.text[self.at]
        self.at += 1
        return char

    def _skip(self, prefix: str) -> bool:
        if self.text.startswith(prefix, self.at):
            self.at += len(prefix)
            return True
        return False

    def _alternation(self) -> Language:
        branches = [self._sequence()]
        while self._skip("|"):
            branches.append(self._sequence())
        return _union(branches)

    def _sequence(self) -> Language:
        result = _EMPTY
        while self.at < len(self.text) and self.text[self.at] not in "|)":
            result = _concat(result, self._repeated(self._atom()))
        return result

    def _atom(self) -> Language:
        char = self._next()
        if char == "(":
            return self._group()
        if char == "[":
            return self._class()
        if char == ".":
            return None
        if char in "^$":
            return _EMPTY
        if char == "\\":
            return self._escape(in_class=False)
        return frozenset({char})

    def _group(self) -> Language:
        number = None
        if self._skip("?"):
            if self._skip("P<"):
                self.at = self.text.index(">", self.at) + 1
                number = self._number()
            elif self._skip(":") or self._skip(">"):
                pass
            elif self._skip("=") or self._skip("!") or self._skip("<=") or self._skip("<!"):
                self._alternation()  # a lookaround matches no text (its groups still count)
                self._close()
                return _EMPTY
            elif self._skip("#"):
                self.at = self.text.index(")", self.at) + 1
                return _EMPTY
            elif (flags := _FLAGS.match(self.text, self.at)) is not None:
                self.at = flags.end()
                if self._skip(")"):
                    return _EMPTY  # global flags
                self._skip(":")
            else:  # (?P=name), (?(1)yes|no)
                raise _UnboundedError
        else:
            number = self._number()
        language = self._alternation()
        self._close()
        if number is not None:
            self.captures[number] = language
        return language

    def _number(self) -> int:
        self.count += 1
        return self.count

    def _close(self) -> None:
        if not self._skip(")"):
            raise re.error("missing )")

    def _class(self) -> Language:
        negated = self._skip("^")
        chars: set[str] | None = set()
        first = True
        while first or self.text[self.at] != "]":
            first = False
            low = self._class_item()
            if self.text[self.at] == "-" and self.text[self.at + 1] != "]":
                self.at += 1
                high = self._class_item()
                if low is None or high is None or len(low) != 1 or len(high) != 1:
                    chars = None
                elif chars is not None and ord(max(high)) - ord(min(low)) < MAX_LANGUAGE:
                    chars.update(map(chr, range(ord(min(low)), ord(max(high)) + 1)))
                else:
                    chars = None
            elif low is None:
                chars = None
            elif chars is not None:
                chars |= low
        self.at += 1
        if negated or chars is None or len(chars) > MAX_LANGUAGE:
            return None
        return frozenset(chars)

    def _class_item(self) -> frozenset[str] | None:
        char = self._next()
        return self._escape(in_class=True) if char == "\\" else frozenset({char})

    def _escape(self, *, in_class: bool) -> Language:
        char = self._next()
        if char in _CATEGORIES:
            return None
        if char in _ZERO_WIDTH and not in_class:
            return _EMPTY
        if char == "b":
            return frozenset({"\b"})
        if char in _CONTROL:
            return frozenset({_CONTROL[char]})
        if char in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[char]
            code = int(self.text[self.at : self.at + width], 16)
            self.at += width
            return frozenset({chr(code)})
        if char.isdigit():
            octal = re.match(r"[0-7]{0,2}", self.text[self.at :])
            digits = char + (octal[0] if octal else "")
            if char == "0" or len(digits) == 3:
                self.at += len(digits) - 1
                return frozenset({chr(int(digits, 8))})
            raise _UnboundedError  # a backreference
        return frozenset({char})

    def _repeated(self, body: Language) -> Language:
        if self._skip("*"):
            low, high = 0, _INFINITE
        elif self._skip("+"):
            low, high = 1, _INFINITE
        elif self._skip("?"):
            low, high = 0, 1
        elif (braces := _REPEAT.match(self.text, self.at)) is not None and (braces[1] or braces[3]):
            self.at = braces.end()
            low = int(braces[1] or 0)
            high = int(braces[3]) if braces[3] else (_INFINITE if braces[2] else low)
        else:
            return body
        self._skip("?") or self._skip("+")  # lazy or possessive: the same texts
        return _repeat(body, low, high)


def _repeat(body: Language, low: int, high: int) -> Language:
    if body is None or high > MAX_LANGUAGE:  # includes unbounded repeats
        return None
    options: list[Language] = []
    repeated: Language = _EMPTY
    for count in range(high + 1):
        if count >= low:
            options.append(repeated)
        if count < high:
            repeated = _concat(repeated, body)
    return _union(options)


def _substitute(template: str, values: dict[int, str]) -> str:
    return _GROUP_REF.sub(lambda match: values[int(match[1])], template)


def fixed_families(regex: str, template: str | None, *, strip: bool) -> frozenset[str]:
    """The families one rule can produce from fixed text only (empty when it can copy input)."""
    template = template or "$1"
    refs = sorted({int(n) for n in _GROUP_REF.findall(template)})
    try:
        re.compile(regex)
        groups = _Parser(regex).captures if refs else {}
    except (re.error, _UnboundedError, ValueError, IndexError):
        return frozenset()
    languages = []
    for ref in refs:
        language = groups.get(ref)
        if language is None:
            return frozenset()
        languages.append(sorted(language))
    families = set()
    for values in product(*languages):
        family = _substitute(template, dict(zip(refs, values, strict=True)))
        families.add(family.strip() if strip else family)
    return frozenset(f for f in families if f)


def builtin_families(matchers: Iterable[Any], *, strip: bool) -> frozenset[str]:
    """The union of `fixed_families` over ua-parser matchers (`.regex` and `.family`)."""
    families: set[str] = {"Other"}
    for matcher in matchers:
        families |= fixed_families(matcher.regex, matcher.family, strip=strip)
    return frozenset(families)
