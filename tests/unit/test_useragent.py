"""User-Agent generalisation: only bounded families and short majors leave, whatever the input."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ua_parser import load_builtins

from gateway.ua_families import builtin_families, fixed_families
from gateway.useragent import OTHER, default_user_agent_parser
from tests.unit.helpers import UA_CHROME

MATCHERS = load_builtins()
BROWSERS = builtin_families(MATCHERS[0], strip=False)
SYSTEMS = builtin_families(MATCHERS[1], strip=True)
CANARIES = [
    "canary-dev-7f3a9c",
    "subj-canary-1a2b3c",
    "pat@example.invalid",
    "pat.example.invalid",
    "192.0.2.77",
    "2001:db8::77",
    "u1234567890",
    "Canarybot",
]
# Shapes that ua-parser's generic rules copy text from (CFNetwork apps, bots, spiders, crawlers,
# "Name/Version" products), plus ordinary browsers with the text inserted.
TEMPLATES = [
    "{}/1.0",
    "{}/7.3 CFNetwork/1.0 Darwin/20.0",
    "{}-iPhone/3.1 CFNetwork/1.0 Darwin/20.0",
    "Mozilla/5.0 (compatible; {}bot/2.1; +https://www.example.com/bot)",
    "Mozilla/5.0 (compatible; {}Spider/3.0)",
    "{} crawler/1.2",
    "{}Bot/1.0",
    "Mozilla/5.0 ({}; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) {}/99.1",
    "Mozilla/5.0 (X11; {} Linux) Gecko/20100101 Firefox/121.0",
    "Dalvik/2.1.0 (Linux; U; Android 13; {} Build/TQ3A)",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) {}/1.0 Mobile/15E148",
]


def _assert_bounded(result: tuple[str | None, str | None, str | None]) -> None:
    browser, major, os_family = result
    assert browser is None or browser in BROWSERS
    assert major is None or (major.isascii() and major.isdigit() and len(major) <= 4)
    assert major is None or browser != OTHER
    assert os_family is None or os_family in SYSTEMS


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("canary", CANARIES)
def test_when_user_agent_carries_a_canary_then_no_output_holds_it(
    template: str, canary: str
) -> None:
    result = default_user_agent_parser()(template.format(canary))
    _assert_bounded(result)
    for value in result:
        assert value is None or canary.lower() not in value.lower()


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(TEMPLATES), st.text(min_size=1, max_size=60))
def test_when_any_text_is_inserted_into_a_user_agent_then_outputs_stay_in_the_allowlists(
    template: str, text: str
) -> None:
    _assert_bounded(default_user_agent_parser()(template.format(text)))


def test_when_generic_rule_would_copy_a_product_token_then_browser_is_other() -> None:
    browser, major, _ = default_user_agent_parser()("canary-dev-7f3a9c/1.0 CFNetwork/1.0")
    assert browser == OTHER
    assert major is None


def test_when_major_version_is_long_then_it_is_dropped() -> None:
    agent = UA_CHROME.replace("Chrome/120.0.0.0", "Chrome/1234567890.0")
    assert default_user_agent_parser()(agent) == ("Chrome", None, "Windows")


@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        (UA_CHROME, ("Chrome", "120", "Windows")),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
            ("Mobile Safari", "17", "iOS"),
        ),
        (
            "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
            ("Firefox", "121", "Linux"),
        ),
        ("Googlebot/2.1 (+http://www.google.com/bot.html)", ("Googlebot", "2", None)),
    ],
)
def test_when_agent_is_a_known_browser_then_its_family_survives(
    agent: str, expected: tuple[str, str, str | None]
) -> None:
    assert default_user_agent_parser()(agent) == expected


@pytest.mark.parametrize(
    ("regex", "template", "expected"),
    [
        (r"ArcGIS Client Using WinInet", "ArcMap", {"ArcMap"}),
        (r"(Chromium|Chrome)/(\d+)", None, {"Chromium", "Chrome"}),
        (r"([Bb]ot)(?:-x|)", None, {"Bot", "bot"}),
        (r"(Opera(?: Mini|))/", "$1 Mobile", {"Opera Mobile", "Opera Mini Mobile"}),
        (r"(Y!J-BR[A-C])", None, {"Y!J-BRA", "Y!J-BRB", "Y!J-BRC"}),
        (r"(ab{1,2})", None, {"ab", "abb"}),
        (r"\b(?=x)(x)", None, {"x"}),
        (r"(a(?:b|c)?) OS", " $1 ", {"a", "ab", "ac"}),
        (r"((a)b)", "$1 $2", {"ab a"}),
        (r"((?i:x)y)", None, {"xy"}),
    ],
)
def test_when_rule_captures_from_a_finite_set_then_each_name_is_allowed(
    regex: str, template: str | None, expected: set[str]
) -> None:
    assert fixed_families(regex, template, strip=True) == expected


@pytest.mark.parametrize(
    ("regex", "template"),
    [
        (r"^(.{0,200})/(\d+) CFNetwork", None),
        (r"([A-z0-9]{1,50}[Bb]ot)", None),
        (r"(\w+)/1", None),
        (r"([^/]+)/1", None),
        (r"(a{1,300})", None),
        (r"([a-z]{1,9})", None),
        (r"(x)", "$2"),
        (r"(x)(?P=1)", "$1"),
        (r"(unbalanced", None),
        ("(" + "|".join(f"name{i}" for i in range(300)) + ")", None),
    ],
)
def test_when_rule_can_copy_input_text_then_it_allows_no_name(
    regex: str, template: str | None
) -> None:
    assert fixed_families(regex, template, strip=False) == frozenset()


def test_when_the_allowlists_are_derived_then_no_private_regex_module_is_used() -> None:
    import inspect

    from gateway import ua_families

    source = inspect.getsource(ua_families)
    assert "re._parser" not in source
    assert "sre_parse" not in source


@pytest.mark.parametrize(
    ("regex", "expected"),
    [
        (r"(?P<name>Foo|Bar)x", {"Foo", "Bar"}),
        (r"(?i)(Edge)", {"Edge"}),
        (r"(?#note)(a[bc-d])", {"ab", "ac", "ad"}),
        (r"(?<=x)(\x41\u0042)", {"AB"}),
        (r"(a{2}?)b{", {"aa"}),
    ],
)
def test_when_rule_uses_other_group_and_escape_forms_then_they_are_read(
    regex: str, expected: set[str]
) -> None:
    assert fixed_families(regex, None, strip=False) == expected
