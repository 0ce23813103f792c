"""Names that denote an identifier or contact data: the one list `rules check` judges names by.

Used for `properties` keys (their field class follows their name, so `keep` is refused on an
identifier-named property) and for `url_clean.keep_query` parameters. Documented, entry by entry,
in config/README.md ("Identifier names").

A name is normalised before it is compared: NFKC, case-folded, and cut into words at camelCase
humps and at `_`, `-`, `.` and spaces (`clientIP` -> client ip, `E-Mail` -> e mail). It matches an
entry when its words, joined, equal the entry's words joined (`userId`, `user-id`, `USER_ID` all
read `userid`), or when its last words do (`billing_email`, `crmUserId`), except for the few
entries in `_WHOLE_NAME_ONLY`, which are ordinary words at the end of a name (`is_mobile`).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

IP_NAMES: Final = (
    "ip", "ip_address", "ip_addr", "ipv4", "ipv6", "client_ip", "client_address", "remote_ip",
    "remote_addr", "remote_address", "source_ip", "src_ip", "user_ip", "peer_ip", "origin_ip",
    "x_forwarded_for", "forwarded_for", "x_real_ip", "true_client_ip", "cf_connecting_ip",
)  # fmt: skip
EMAIL_NAMES: Final = (
    "email", "e_mail", "mail", "email_address", "email_addr", "mail_address", "mailto",
)  # fmt: skip
PHONE_NAMES: Final = (
    "phone", "phone_number", "phone_no", "mobile", "mobile_number", "mobile_phone", "msisdn", "tel",
    "telephone", "cell", "cell_phone", "fax",
)  # fmt: skip
DEVICE_NAMES: Final = (
    "device_id", "idfa", "idfv", "gaid", "aaid", "adid", "advertising_id", "ad_id", "cookie_id",
    "pixel_id", "imei", "imsi", "mac", "mac_address", "android_id", "serial_number", "udid",
)  # fmt: skip
USER_NAMES: Final = (
    "user_id", "uid", "userid", "customer_id", "account_id", "member_id", "visitor_id",
    "anonymous_id", "subject_id", "person_id", "profile_id", "subscriber_id", "login",
    "username", "user_name", "uuid", "guid",
)  # fmt: skip
# Query parameters that commonly carry an identifier besides the names above: ad click ids,
# analytics and e-mail campaign cookies, sessions and credentials.
QUERY_NAMES: Final = (
    "gclid", "gbraid", "wbraid", "dclid", "fbclid", "msclkid", "yclid", "ttclid", "twclid",
    "li_fat_id", "igshid", "_ga", "_gl", "_hsenc", "_hsmi", "mc_eid", "mkt_tok", "ajs_uid",
    "ajs_aid", "client_id", "cid", "vid", "session", "session_id", "sessionid", "sid",
    "jsessionid", "phpsessid", "token", "access_token", "id_token", "refresh_token", "auth",
    "code", "key", "api_key", "password", "pwd", "id", "visitor", "ga_cid", "fbp", "_fbp", "fbc",
    "_fbc",
)  # fmt: skip
# Ordinary words at the end of a name (`is_mobile`, `promo_code`, `sort_key`): whole names only.
_WHOLE_NAME_ONLY: Final = frozenset(
    {"mobile", "mail", "tel", "cell", "fax", "mac", "login", "code", "key", "auth", "cid", "vid"}
)
# A name that starts with one of these is a flag or a count about the data, not the data
# (`has_email`, `is_mobile`, `num_emails`).
_FLAG_WORDS: Final = frozenset({"has", "is", "was", "can", "should", "num", "count"})
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+|[^\W\d_]+")


def name_words(name: str) -> tuple[str, ...]:
    """The lower-case words of a name: `clientIPAddress` -> ("client", "ip", "address")."""
    return tuple(w.casefold() for w in _WORD.findall(unicodedata.normalize("NFKC", name)))


def _table(*groups: tuple[str, ...]) -> dict[str, str]:
    return {"".join(name_words(name)): name for group in groups for name in group}


_IP: Final = _table(IP_NAMES)
_IDENTIFIER: Final = _table(EMAIL_NAMES, PHONE_NAMES, DEVICE_NAMES, USER_NAMES)
_QUERY: Final = _table(QUERY_NAMES)


def _forms(words: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    """The words as given, without trailing numbers, and with the last word singular.

    So `email1` and `ip4` read as `email` and `ip`; `emails`, `user_ids` and `ip_addresses` as
    their singular.
    """
    while len(words) > 1 and words[-1].isdigit():
        words = words[:-1]
    forms = [words]
    last = words[-1] if words else ""
    for suffix in ("es", "s"):
        if last.endswith(suffix) and len(last) > len(suffix) + 1:
            forms.append((*words[:-1], last[: -len(suffix)]))
    return tuple(forms)


def _matches(words: tuple[str, ...], table: dict[str, str]) -> bool:
    if not words or words[0] in _FLAG_WORDS:
        return False
    return any(_matches_form(form, table) for form in _forms(words))


def _matches_form(words: tuple[str, ...], table: dict[str, str]) -> bool:
    if "".join(words) in table:
        return True
    for start in range(1, len(words)):
        tail = "".join(words[start:])
        if tail in table and tail not in _WHOLE_NAME_ONLY:
            return True
    return False


def denotes_ip(name: str) -> bool:
    """True when `name` denotes an IP address (IP_NAMES)."""
    return _matches(name_words(name), _IP)


def denotes_identifier(name: str) -> bool:
    """True when `name` denotes another identifier or contact data.

    An email address, a phone number, a device, cookie or advertising id, a user id (EMAIL_,
    PHONE_, DEVICE_, USER_NAMES).
    """
    return _matches(name_words(name), _IDENTIFIER)


def query_carries_identifier(name: str) -> bool:
    """True for a query parameter that commonly carries an identifier.

    A name above, or an ad click id, an analytics or campaign cookie, a session or a credential
    (QUERY_NAMES).
    """
    words = name_words(name)
    return any(_matches(words, table) for table in (_IP, _IDENTIFIER, _QUERY))
