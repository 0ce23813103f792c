"""`rules check` refuses configs that would send identifiers or contact data out, by name and by
operator limits; internal sinks may waive a refusal visibly under `exceptions`."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, GatewayConfig, load_config
from gateway.config_models import property_class
from gateway.events import IDENTIFIER_FIELDS
from gateway.identifier_names import query_carries_identifier
from gateway.operators.url_clean import UrlCleanConfig

SETTINGS = "unknown_age: adult\n"
# field case "partner keeps identifier properties refused", as shipped to us
PARTNER = """\
topic: sink.partner
audience: third_party
purposes: [third_party_sharing]
kinds: [usage]
fields:
  event_type: keep
properties:
  ip: keep
  email: keep
  device_id: keep
"""
# field case "full-IP truncation refused"
ADNET = """\
topic: sink.adnet
audience: advertising
purposes: [advertising]
kinds: [usage]
fields:
  event_type: keep
  ip: {op: ip_truncate, ipv4_prefix: 32, ipv6_prefix: 128}
"""
HEAD = "topic: sink.x\naudience: {audience}\npurposes: [analytics]\nkinds: [usage]\n"


def _problems(tmp_path: Path, sink: str) -> list[tuple[int, str, str]]:
    (tmp_path / "sinks").mkdir(parents=True)
    (tmp_path / "gateway.yaml").write_text(SETTINGS)
    (tmp_path / "sinks" / "x.yaml").write_text(sink)
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert all(Path(p.file).name == "x.yaml" for p in caught.value.problems)
    return [(p.line, p.path, p.message) for p in caught.value.problems]


def _load(tmp_path: Path, sink: str) -> GatewayConfig:
    (tmp_path / "sinks").mkdir(parents=True)
    (tmp_path / "gateway.yaml").write_text(SETTINGS)
    (tmp_path / "sinks" / "x.yaml").write_text(sink)
    return load_config(tmp_path)


def test_when_partner_keeps_identifier_named_properties_then_each_is_refused(
    tmp_path: Path,
) -> None:
    names = "config/README.md, Identifier names"
    assert _problems(tmp_path, PARTNER) == [
        (
            8,
            "properties.ip",
            "operator 'keep' is not allowed on property 'ip': its name denotes an IP address"
            f" ({names}); use one of: drop, ip_truncate, pseudonym, redact",
        ),
        (
            9,
            "properties.email",
            "operator 'keep' is not allowed on property 'email': its name denotes an identifier"
            f" or contact data ({names}); use one of: drop, pseudonym, redact",
        ),
        (
            10,
            "properties.device_id",
            "operator 'keep' is not allowed on property 'device_id': its name denotes an"
            f" identifier or contact data ({names}); use one of: drop, pseudonym, redact",
        ),
    ]


def test_when_ip_truncate_keeps_every_bit_then_it_is_refused_for_every_sink(
    tmp_path: Path,
) -> None:
    assert _problems(tmp_path, ADNET) == [
        (
            7,
            "fields.ip.ipv4_prefix",
            "ipv4_prefix 32 keeps the whole address; at most /24 for audience 'advertising'"
            " (use pseudonym to link, or drop)",
        ),
        (
            7,
            "fields.ip.ipv6_prefix",
            "ipv6_prefix 128 keeps the whole address; at most /48 for audience 'advertising'"
            " (use pseudonym to link, or drop)",
        ),
    ]
    internal = ADNET.replace("advertising", "internal", 1).replace("32", "31").replace("128", "65")
    assert [m for _, _, m in _problems(tmp_path / "i", internal)] == [
        "ipv4_prefix 31 barely truncates; at most /30 on any sink (use pseudonym to link, or drop)",
        "ipv6_prefix 65 barely truncates; at most /64 on any sink (use pseudonym to link, or drop)",
    ]


@pytest.mark.parametrize("audience", ["advertising", "social", "third_party"])
def test_when_partner_sink_keeps_more_than_24_or_48_bits_then_it_is_refused(
    tmp_path: Path, audience: str
) -> None:
    sink = HEAD.format(audience=audience) + "fields:\n  ip: {op: ip_truncate, ipv4_prefix: 25}\n"
    assert _problems(tmp_path, sink) == [
        (
            6,
            "fields.ip.ipv4_prefix",
            f"a sink of audience '{audience}' may keep at most /24; got /25",
        )
    ]
    sink = sink.replace("ipv4_prefix: 25", "ipv6_prefix: 56")
    assert _problems(tmp_path / "b", sink)[0][2].endswith("may keep at most /48; got /56")


def test_when_internal_sink_keeps_a_28_or_a_64_then_it_loads(tmp_path: Path) -> None:
    sink = HEAD.format(audience="internal")
    sink += "fields:\n  ip: {op: ip_truncate, ipv4_prefix: 28, ipv6_prefix: 64}\n"
    assert _load(tmp_path, sink).sinks[0].fields["ip"].model_dump() == {
        "op": "ip_truncate",
        "ipv4_prefix": 28,
        "ipv6_prefix": 64,
    }


@pytest.mark.parametrize(
    ("name", "klass"),
    [
        ("userId", "identifier"),
        ("E-Mail", "identifier"),
        ("clientIP", "ip"),
        ("X-Forwarded-For", "ip"),
        ("remote.addr", "ip"),
        ("IPAddress", "ip"),
        ("billing_email", "identifier"),
        ("crmUserId", "identifier"),
        ("Phone Number", "identifier"),
        ("MSISDN", "identifier"),
        ("idfa", "identifier"),
        ("mac_address", "identifier"),
        ("\uff45\uff4d\uff41\uff49\uff4c", "identifier"),  # full-width "email"
        ("mobile", "identifier"),
        ("is_mobile", "property"),
        ("voice_mail", "property"),
        ("promo_code", "property"),
        ("zip", "property"),
        ("tip", "property"),
        ("experiment", "property"),
        # plurals, trailing digits, abbreviations and flags (found by a red-team pass)
        ("emails", "identifier"),
        ("email1", "identifier"),
        ("email_addr", "identifier"),
        ("phoneNo", "identifier"),
        ("user_ids", "identifier"),
        ("deviceIds", "identifier"),
        ("ip_addresses", "ip"),
        ("ips", "ip"),
        ("ip4", "ip"),
        ("uuid", "identifier"),
        ("has_email", "property"),
        ("num_emails", "property"),
        ("status", "property"),
    ],
)
def test_when_property_name_is_spelled_any_way_then_its_class_follows_the_normalised_name(
    name: str, klass: str
) -> None:
    assert property_class(name) == klass


def test_when_contract_identifier_fields_are_used_as_names_then_the_list_knows_each() -> None:
    assert {name: property_class(name) for name in sorted(IDENTIFIER_FIELDS)} == {
        "advertising_id": "identifier",
        "cookie_id": "identifier",
        "device_id": "identifier",
        "ip": "ip",
        "pixel_id": "identifier",
        "subject_id": "identifier",
    }


@pytest.mark.parametrize(
    ("name", "carries"),
    [
        ("gclid", True),
        ("fbclid", True),
        ("_ga", True),
        ("mc_eid", True),
        ("sid", True),
        ("SessionId", True),
        ("token", True),
        ("uid", True),
        ("email", True),
        ("utm_source", False),
        ("utm_campaign", False),
        ("q", False),
        ("page", False),
        ("promo_code", False),
        ("id", True),
        ("guid", True),
        ("emails", True),
        ("user_ids", True),
        ("visitor", True),
        ("_fbp", True),
        ("ga_cid", True),
    ],
)
def test_when_query_parameter_is_named_then_identifier_carriers_are_recognised(
    name: str, carries: bool
) -> None:
    assert query_carries_identifier(name) is carries


KEEPS_GCLID = "fields:\n  page: {op: url_clean, keep_query: [utm_source, gclid]}\n"


def test_when_partner_keeps_an_identifier_query_parameter_then_it_is_refused(
    tmp_path: Path,
) -> None:
    sink = HEAD.format(audience="advertising") + KEEPS_GCLID
    assert _problems(tmp_path, sink) == [
        (6, "fields.page.keep_query.1", "query parameter 'gclid' commonly carries an identifier")
    ]


def test_when_internal_sink_keeps_one_then_it_needs_a_visible_exception(tmp_path: Path) -> None:
    sink = HEAD.format(audience="internal") + KEEPS_GCLID
    assert _problems(tmp_path, sink) == [
        (
            6,
            "fields.page.keep_query.1",
            "query parameter 'gclid' commonly carries an identifier; or allow it under"
            " `exceptions` as 'fields.page.keep_query.gclid: <why>'",
        )
    ]
    why = "ad spend reconciliation with our own ad account (PRIV-57)"
    waived = sink + f"exceptions:\n  fields.page.keep_query.gclid: {why}\n"
    rule = _load(tmp_path / "ok", waived).sinks[0]
    assert rule.exceptions == {"fields.page.keep_query.gclid": why}
    assert rule.fields["page"] == UrlCleanConfig(
        op="url_clean", keep_query=["utm_source", "gclid"], template_ids=False
    )


def test_when_internal_sink_waives_an_identifier_property_then_it_may_keep_it(
    tmp_path: Path,
) -> None:
    sink = HEAD.format(audience="internal") + "fields: {event_type: keep}\n"
    sink += "properties:\n  account_id: keep\n"
    sink += "exceptions:\n  properties.account_id: B2B account of a company, not a person\n"
    rule = _load(tmp_path, sink).sinks[0]
    assert [(name, p.op) for name, p in rule.properties.items()] == [("account_id", "keep")]


def test_when_exception_is_on_a_partner_or_waives_nothing_then_it_is_refused(
    tmp_path: Path,
) -> None:
    body = "fields: {event_type: keep}\nproperties:\n  account_id: pseudonym\n"
    body += "exceptions:\n  properties.account_id: B2B account of a company, not a person\n"
    assert _problems(tmp_path, HEAD.format(audience="social") + body) == [
        (9, "exceptions.properties.account_id", "only internal sinks may list exceptions"
         " (audience is 'social')"),
    ]  # fmt: skip
    assert _problems(tmp_path / "b", HEAD.format(audience="internal") + body) == [
        (9, "exceptions.properties.account_id", "this exception waives nothing in this rule;"
         " remove it"),
    ]  # fmt: skip
    short = HEAD.format(audience="internal") + body.replace(
        "B2B account of a company, not a person", "ok"
    )
    assert _problems(tmp_path / "c", short.replace("pseudonym", "keep")) == [
        (9, "exceptions.properties.account_id", "String should have at least 10 characters"),
    ]


def test_when_template_ids_is_not_set_then_partners_template_and_internal_sinks_do_not(
    tmp_path: Path,
) -> None:
    page = "fields:\n  page: url_clean\n"
    partner = _load(tmp_path / "p", HEAD.format(audience="social") + page).sinks[0]
    internal = _load(tmp_path / "i", HEAD.format(audience="internal") + page).sinks[0]
    assert partner.fields["page"] == UrlCleanConfig(op="url_clean", template_ids=True)
    assert internal.fields["page"] == UrlCleanConfig(op="url_clean", template_ids=False)
    off = "fields:\n  page: {op: url_clean, template_ids: false}\n"
    assert _problems(tmp_path / "o", HEAD.format(audience="social") + off) == [
        (6, "fields.page.template_ids", "a sink of audience 'social' must template identifiers"
         " in URLs"),
    ]  # fmt: skip
