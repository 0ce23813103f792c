"""User-Agent generalisation with ua-parser 1.0 (regex/rs resolver), behind one bounded cache.

The cache holds the bounded results and is cleared when full; ua-parser's own caching resolver
is not used.

Only bounded values leave: a browser or OS family from the allowlists of `gateway.ua_families`
(else "Other"), and a major version of at most four digits for an allowlisted browser (else
None), so text copied from a crafted User-Agent by a generic rule never reaches a sink.

Building the resolver and the allowlists reads the builtin regexes (~0.5 s), so
`default_user_agent_parser` builds one lazily and returns the same parser afterwards.
"""

from __future__ import annotations

import re
from functools import cache

from ua_parser import Domain, load_builtins
from ua_parser.regex import Resolver

from gateway.operators.base import UserAgentParser
from gateway.ua_families import builtin_families

UA_CACHE_SIZE = 4096
OTHER = "Other"
_MAJOR = re.compile(r"[0-9]{1,4}\Z")


def build_user_agent_parser(cache_size: int = UA_CACHE_SIZE) -> UserAgentParser:
    """A function UA -> (browser family, major version, OS family), cached per UA string.

    Its `families` attribute is the frozenset of every family it can return.
    """
    matchers = load_builtins()
    resolver = Resolver(matchers)
    domains = Domain.USER_AGENT | Domain.OS
    browsers = builtin_families(matchers[0], strip=False)  # ua-parser strips only OS families
    systems = builtin_families(matchers[1], strip=True)

    seen: dict[str, tuple[str | None, str | None, str | None]] = {}

    def parse(user_agent: str) -> tuple[str | None, str | None, str | None]:
        found = seen.get(user_agent)
        if found is not None:
            return found
        result = resolver(user_agent, domains)
        agent, os_ = result.user_agent, result.os
        browser = (agent.family if agent.family in browsers else OTHER) if agent else None
        major = agent.major if agent and browser != OTHER else None
        found = (
            browser,
            major if major and _MAJOR.match(major) else None,
            (os_.family if os_.family in systems else OTHER) if os_ else None,
        )
        if len(seen) >= cache_size:
            seen.clear()
        seen[user_agent] = found
        return found

    # Every family it can return: what the value guard's proof may trust (gateway.guard).
    parse.families = browsers | systems | {OTHER}  # type: ignore[attr-defined]
    return parse


@cache
def default_user_agent_parser() -> UserAgentParser:
    """The shared parser (built on first use)."""
    return build_user_agent_parser()
