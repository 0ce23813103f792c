"""url_clean: drop a URL's userinfo, fragment and query, and template identifier-like parts.

Allowlisted query parameters (`keep_query`) are kept; with `template_ids`, identifier-like path
segments and kept values become placeholders.

An email address never survives: a path segment or kept parameter that holds an `@` in any
spelling (raw, percent-encoded once or twice, full-width, HTML entity) is replaced or dropped.
With `template_ids`, a path segment that holds an email becomes `:email`, one that
`looks_like_id` becomes `:id`, and so does the value of a kept parameter that looks like one:
`https://www.example.com/account/12345678/settings` -> `https://www.example.com/account/:id/settings`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from typing import Any, ClassVar, Literal
from urllib.parse import unquote

from pydantic import Field

from gateway.identifier_names import query_carries_identifier
from gateway.operators.base import (
    DROP,
    INTERNAL,
    PROPERTY,
    URL,
    Operator,
    OperatorConfig,
    OperatorTools,
    Refusal,
    Synthesis,
)

# An at-sign: raw, full-width, small, percent-encoded (any depth) or as an HTML entity.
_AT_SIGN = re.compile(r"[@\uff20\ufe6b]|%(?:25)*40|&#0*64|&#x0*40|&commat", re.IGNORECASE)
# The only spellings above that an ASCII text without "@" and "%" can hold.
_ENTITY_AT = re.compile(r"&#|&commat", re.IGNORECASE)
EMAIL_MARKER = "[email]"  # an email in a path segment, without template_ids
ID_PLACEHOLDER = ":id"
EMAIL_PLACEHOLDER = ":email"
# What an identifier looks like inside a segment or value; every branch needs a digit, so a
# text without one is never templated (the fast path's test). Words are runs of ASCII letters
# and digits; thresholds and examples are in config/README.md.
_ID_LIKE = re.compile(
    r"[0-9]{5}"  # a run of 5+ digits: 12345678, order-20261126
    r"|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"  # a UUID
    r"|(?<![0-9a-z])(?=[a-f]*[0-9])[0-9a-f]{8,}(?![0-9a-z])"  # a hex word of 8+ with a digit
    # a word of 10+ letters and digits, with 2+ digits and a letter: aZ3kL9qP2xW7
    r"|(?<![0-9a-z])(?=(?:[a-z]*[0-9]){2})(?=[0-9]*[a-z])[0-9a-z]{10,}(?![0-9a-z])",
    re.IGNORECASE | re.ASCII,
)
_DIGIT = re.compile(r"[0-9]")


def may_hold_email(text: str) -> bool:
    """True when `text`, percent-decoded up to three times, holds an at-sign in any spelling."""
    for _ in range(3):
        if _AT_SIGN.search(text):
            return True
        if "%" not in text:
            return False
        decoded = unquote(text)
        if decoded == text:
            return False
        text = decoded
    return True  # still encoded after three rounds: suspicious, treat as holding one


def plainly_without_at(text: str) -> bool:
    """A cheap, conservative test: True only when no spelling of an at-sign can be in `text`.

    That is: ASCII, no "@", no "%", no HTML entity. False sends the value down the careful path.
    """
    return (
        text.isascii()
        and "@" not in text
        and "%" not in text
        and ("&" not in text or not _ENTITY_AT.search(text))
    )


def looks_like_id(text: str) -> bool:
    """True when `text` (a path segment or a query value) looks like an identifier (`_ID_LIKE`).

    Percent-decoded up to three times and NFKC-normalised, it holds a long digit run, a UUID,
    a hex word with a digit or a long word mixing letters and digits.
    """
    for _ in range(3):
        if "%" not in text:
            break
        text = unquote(text)
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    return _ID_LIKE.search(text) is not None


class UrlCleanConfig(OperatorConfig):
    """`keep_query`: query parameters to keep; `template_ids`: put placeholders for identifiers.

    `keep_query` names the parameters (default none). `template_ids` replaces identifier-like
    path segments and kept values by placeholders; the config loader sets it (on for partner
    sinks, off for internal ones) when the rule does not; unset here means on.
    """

    op: Literal["url_clean"]
    keep_query: list[str] = Field(default_factory=list)
    template_ids: bool | None = None


class UrlClean(Operator):
    """Clean a URL down to scheme, host and path (plus allowlisted parameters)."""

    name: ClassVar[str] = "url_clean"
    config_model: ClassVar[type[OperatorConfig]] = UrlCleanConfig
    field_classes: ClassVar[frozenset[str]] = frozenset({URL, PROPERTY})

    def __init__(self, config: OperatorConfig, tools: OperatorTools) -> None:
        super().__init__(config, tools)
        assert isinstance(config, UrlCleanConfig)
        self._keep = frozenset(config.keep_query)
        self._template = config.template_ids is not False

    @classmethod
    def for_audience(cls, config: OperatorConfig, audience: str) -> OperatorConfig:
        """`template_ids` filled in when unset: on for partner sinks, off for internal ones."""
        assert isinstance(config, UrlCleanConfig)
        if config.template_ids is None:
            return config.model_copy(update={"template_ids": audience != INTERNAL})
        return config

    @classmethod
    def refusals(cls, config: OperatorConfig, audience: str) -> Iterator[Refusal]:
        """No templating on a partner sink; kept query parameters that carry identifiers.

        An internal sink may waive the latter in `exceptions` (`keep_query.<name>`).
        """
        assert isinstance(config, UrlCleanConfig)
        if config.template_ids is False and audience != INTERNAL:
            message = f"a sink of audience '{audience}' must template identifiers in URLs"
            yield Refusal(("template_ids",), message)
        for index, name in enumerate(config.keep_query):
            if query_carries_identifier(name):
                message = f"query parameter '{name}' commonly carries an identifier"
                yield Refusal(("keep_query", index), message, exception=f"keep_query.{name}")

    def synthesis(self) -> Synthesis:
        """Copied runs of the URL joined by `/ ? & =`, and the placeholders.

        Every text it writes between two copied runs holds one of those joiners: the
        `scheme://host` it rebuilds is cut from the input at `://` (and at `@`, which no
        proven input holds), path segments are joined by `/`, parameters by `?` and `&`, a
        templated value follows `=`.
        """
        return Synthesis(
            joiners="/?&=", vocabulary=(ID_PLACEHOLDER, EMAIL_PLACEHOLDER, EMAIL_MARKER)
        )

    def apply(self, value: Any) -> Any:
        """The cleaned URL (module docstring); DROP for a non-string or an email in the host."""
        if type(value) is not str:
            return DROP
        rest, _, query = value.partition("#")[0].partition("?")
        if plainly_without_at(value):  # no email, so no userinfo either: cutting suffices
            if self._template and _DIGIT.search(rest) is not None:
                prefix, path = _split_authority(rest)
                rest = prefix + "/".join(_template_id(s) for s in path.split("/"))
            keep = self._keep
            if not query or not keep:
                return rest
            kept = [p for p in query.split("&") if p.partition("=")[0] in keep]
            if self._template and kept:
                kept = [self._kept(p) for p in kept]
            return rest + "?" + "&".join(kept) if kept else rest
        prefix, path = _split_authority(rest)
        if prefix:
            scheme, _, authority = prefix.partition("://")
            host = authority.rpartition("@")[2]
            if may_hold_email(host):
                return DROP
            prefix = f"{scheme}://{host}"
        if self._template or may_hold_email(path):
            path = self._path("", path)
        kept = [self._kept(p) for p in query.split("&") if self._keeps(p)] if query else []
        return prefix + path + ("?" + "&".join(kept) if kept else "")

    def _path(self, prefix: str, path: str) -> str:
        """`prefix` + `path` with email-holding (and, templating, id-like) segments replaced."""
        if not self._template:
            return prefix + "/".join(
                EMAIL_MARKER if may_hold_email(s) else s for s in path.split("/")
            )
        segments = (
            EMAIL_PLACEHOLDER if may_hold_email(s) else ID_PLACEHOLDER if looks_like_id(s) else s
            for s in path.split("/")
        )
        return prefix + "/".join(segments)

    def _keeps(self, parameter: str) -> bool:
        name = parameter.partition("=")[0]
        return name in self._keep and not may_hold_email(parameter)

    def _kept(self, parameter: str) -> str:
        """A kept parameter, its value templated when it looks like an identifier."""
        if not self._template:
            return parameter
        name, _, value = parameter.partition("=")
        templated = _DIGIT.search(value) or "%" in value or not value.isascii()
        return name + "=" + ID_PLACEHOLDER if templated and looks_like_id(value) else parameter


def _template_id(segment: str) -> str:
    """A segment known to hold no email: `:id` when it looks like an identifier."""
    return ID_PLACEHOLDER if _DIGIT.search(segment) and _ID_LIKE.search(segment) else segment


def _split_authority(url: str) -> tuple[str, str]:
    """`scheme://authority` and the path after it (`""` and the text when it has no scheme)."""
    scheme, sep, after = url.partition("://")
    if not sep:
        return "", url
    authority, slash, path = after.partition("/")
    return f"{scheme}://{authority}", slash + path
