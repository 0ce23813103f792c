"""User-Agent generalisation with ua-parser 1.0 (regex/rs resolver), behind a bounded cache.

Building the resolver loads the builtin regexes (~0.3 s), so `default_user_agent_parser` builds
one lazily and returns the same immutable parser afterwards.
"""

from __future__ import annotations

from functools import cache

from ua_parser import CachingResolver, Domain, load_builtins
from ua_parser.caching import Lru
from ua_parser.regex import Resolver

from gateway.operators.base import UserAgentParser

UA_CACHE_SIZE = 4096


def _major(version: str | None) -> str | None:
    return version if version else None


def build_user_agent_parser(cache_size: int = UA_CACHE_SIZE) -> UserAgentParser:
    """A function UA -> (browser family, major version, OS family), cached per UA string."""
    resolver = CachingResolver(Resolver(load_builtins()), Lru(cache_size))
    domains = Domain.USER_AGENT | Domain.OS

    seen: dict[str, tuple[str | None, str | None, str | None]] = {}

    def parse(user_agent: str) -> tuple[str | None, str | None, str | None]:
        found = seen.get(user_agent)
        if found is not None:
            return found
        result = resolver(user_agent, domains)
        agent, os_ = result.user_agent, result.os
        found = (
            agent.family if agent else None,
            _major(agent.major) if agent else None,
            os_.family if os_ else None,
        )
        if len(seen) >= cache_size:
            seen.clear()
        seen[user_agent] = found
        return found

    return parse


@cache
def default_user_agent_parser() -> UserAgentParser:
    """The shared parser (built on first use)."""
    return build_user_agent_parser()
