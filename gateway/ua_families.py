"""The bounded allowlists of browser and OS families a User-Agent may be generalised to.

ua-parser's generic rules copy text from the User-Agent into the family (`^(.{0,200})/(\\d+)
CFNetwork`, `([A-z0-9]{1,50}[Bb]ot)`, ...), so a crafted agent such as "canary-dev-7f3a9c/1.0
CFNetwork" would carry an identifier into the output. The allowlist holds only the families the
builtin rules can produce from fixed text: a literal replacement ("ArcMap"), or a capture group
whose language is a small finite set read off the regex itself ("(Chromium|Chrome)/...",
"[Bb]ot"), substituted into the replacement template. Any other family leaves as "Other".

The regexes are read with the standard library's own regex parser (`re._parser`), the only
way to see a pattern's structure; it is private but has been stable since Python 2.
"""

from __future__ import annotations

import re
import re._parser as sre  # type: ignore[import-not-found]  # no stub; see docstring
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


def _in_language(items: list[tuple[Any, Any]]) -> Language:
    chars: set[str] = set()
    for op, arg in items:
        if str(op) == "LITERAL":
            chars.add(chr(arg))
        elif str(op) == "RANGE" and arg[1] - arg[0] < MAX_LANGUAGE:
            chars.update(chr(c) for c in range(arg[0], arg[1] + 1))
        else:  # NEGATE, CATEGORY (\d, \w, \s, ...), wide ranges
            return None
    return frozenset(chars) if len(chars) <= MAX_LANGUAGE else None


def _language(items: Any) -> Language:
    """Every text a parsed (sub)pattern can match, or None when unbounded or too large."""
    result: Language = frozenset({""})
    for op, arg in items:
        name = str(op)
        part: Language
        if name == "LITERAL":
            part = frozenset({chr(arg)})
        elif name == "IN":
            part = _in_language(arg)
        elif name == "BRANCH":
            part = _union(_language(branch) for branch in arg[1])
        elif name == "SUBPATTERN":
            part = _language(arg[3])
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, high, inner = arg
            body = _language(inner)
            if body is None or high > MAX_LANGUAGE:  # includes unbounded repeats
                return None
            options: list[Language] = []
            repeated: Language = frozenset({""})
            for count in range(high + 1):
                if count >= low:
                    options.append(repeated)
                if count < high:
                    repeated = _concat(repeated, body)
            part = _union(options)
        elif name in ("AT", "ASSERT", "ASSERT_NOT"):  # zero-width
            part = frozenset({""})
        else:  # ANY, NOT_LITERAL, CATEGORY, GROUPREF, ...
            return None
        result = _concat(result, part)
        if result is None:
            return None
    return result


def _groups(items: Any, found: dict[int, Any]) -> dict[int, Any]:
    """Group number -> parsed subpattern, at any depth."""
    for op, arg in items:
        name = str(op)
        if name == "SUBPATTERN":
            if arg[0] is not None:
                found[arg[0]] = arg[3]
            _groups(arg[3], found)
        elif name == "BRANCH":
            for branch in arg[1]:
                _groups(branch, found)
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            _groups(arg[2], found)
        elif name in ("ASSERT", "ASSERT_NOT"):
            _groups(arg[1], found)
    return found


def _substitute(template: str, values: dict[int, str]) -> str:
    return _GROUP_REF.sub(lambda match: values[int(match[1])], template)


def fixed_families(regex: str, template: str | None, *, strip: bool) -> frozenset[str]:
    """The families one rule can produce from fixed text only (empty when it can copy input)."""
    template = template or "$1"
    refs = sorted({int(n) for n in _GROUP_REF.findall(template)})
    try:
        groups = _groups(sre.parse(regex), {}) if refs else {}
    except re.error:
        return frozenset()
    languages = []
    for ref in refs:
        language = _language(groups[ref]) if ref in groups else None
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
