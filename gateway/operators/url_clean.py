"""url_clean: drop userinfo, fragment and query (or keep allowlisted query parameters).

An email address never survives: a path segment or kept parameter that holds an `@` in any
spelling (raw, percent-encoded once or twice, full-width, HTML entity) is replaced or dropped.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar
from urllib.parse import unquote

from pydantic import Field

from gateway.operators.base import DROP, PROPERTY, URL, Operator, OperatorConfig, OperatorTools

# An at-sign: raw, full-width, small, percent-encoded (any depth) or as an HTML entity.
_AT_SIGN = re.compile(r"[@\uff20\ufe6b]|%(?:25)*40|&#0*64|&#x0*40|&commat", re.IGNORECASE)
# The only spellings above that an ASCII text without "@" and "%" can hold.
_ENTITY_AT = re.compile(r"&#|&commat", re.IGNORECASE)
EMAIL_MARKER = "[email]"


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
    """A cheap, conservative test: True only when no spelling of an at-sign can be in `text`
    (ASCII, no "@", no "%", no HTML entity). False sends the value down the careful path."""
    return (
        text.isascii()
        and "@" not in text
        and "%" not in text
        and ("&" not in text or not _ENTITY_AT.search(text))
    )


class UrlCleanConfig(OperatorConfig):
    """`keep_query`: names of query parameters to keep (default none)."""

    keep_query: list[str] = Field(default_factory=list)


class UrlClean(Operator):
    """Clean a URL down to scheme, host and path (plus allowlisted parameters)."""

    name: ClassVar[str] = "url_clean"
    config_model: ClassVar[type[OperatorConfig]] = UrlCleanConfig
    field_classes: ClassVar[frozenset[str]] = frozenset({URL, PROPERTY})

    def __init__(self, config: OperatorConfig, tools: OperatorTools) -> None:
        super().__init__(config, tools)
        assert isinstance(config, UrlCleanConfig)
        self._keep = frozenset(config.keep_query)

    def apply(self, value: Any) -> Any:
        if type(value) is not str:
            return DROP
        if plainly_without_at(value):  # no email, so no userinfo either: cutting suffices
            rest, _, query = value.partition("#")[0].partition("?")
            keep = self._keep
            if not query or not keep:
                return rest
            kept = [p for p in query.split("&") if p.partition("=")[0] in keep]
            return rest + "?" + "&".join(kept) if kept else rest
        rest, _, query = value.partition("#")[0].partition("?")
        scheme, sep, after = rest.partition("://")
        prefix, path = "", rest
        if sep:
            authority, slash, path = after.partition("/")
            host = authority.rpartition("@")[2]
            if may_hold_email(host):
                return DROP
            prefix, path = f"{scheme}://{host}", slash + path
        if may_hold_email(path):
            path = "/".join(EMAIL_MARKER if may_hold_email(s) else s for s in path.split("/"))
        kept = [p for p in query.split("&") if self._keeps(p)] if self._keep and query else []
        return prefix + path + ("?" + "&".join(kept) if kept else "")

    def _keeps(self, parameter: str) -> bool:
        name = parameter.partition("=")[0]
        return name in self._keep and not may_hold_email(parameter)
