"""The secure local broker's plan: its users and ACLs come from `gateway acls`, its super user
is a name no sink can take."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from devtools import local_broker, secure_broker
from gateway.config import load_config

REPO = Path(__file__).resolve().parents[2]


def test_when_the_plan_is_made_then_it_has_gateway_privacy_and_partner_users_not_admin() -> None:
    users, _ = secure_broker.acl_plan(REPO / "config", "privacy-gateway")
    assert secure_broker.ADMIN not in users
    sinks = [rule.name for rule in load_config(REPO / "config").sinks]
    assert sorted(users) == sorted(["gateway", "privacy", *sinks])


def test_when_a_sink_is_named_admin_then_it_stays_an_ordinary_partner(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    (config / "sinks" / "ads.yaml").rename(config / "sinks" / "admin.yaml")
    users, lines = secure_broker.acl_plan(config, "privacy-gateway")
    assert "admin" in users
    assert secure_broker.ADMIN != "admin"
    assert any("'User:admin'" in line or "User:admin " in line for line in lines)


def test_when_a_principal_would_be_the_super_user_then_the_plan_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(secure_broker, "ADMIN", "gateway")
    with pytest.raises(local_broker.BrokerError, match="super user"):
        secure_broker.acl_plan(REPO / "config", "privacy-gateway")


def test_when_the_app_id_is_empty_then_the_plan_is_refused() -> None:
    with pytest.raises(ValueError, match="the app id is empty"):
        secure_broker.acl_plan(REPO / "config", "")


async def test_when_a_loadgen_send_fails_then_the_load_ends_with_that_error() -> None:
    import asyncio

    from aiokafka.errors import TopicAuthorizationFailedError

    from devtools.loadgen import Sender

    class Producer:
        async def send(self, topic: str, value: bytes, key: bytes) -> asyncio.Future[None]:
            sent: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            if topic == "refused":
                sent.set_exception(TopicAuthorizationFailedError(topic))
            else:
                sent.set_result(None)
            return sent

        async def flush(self) -> None:
            await asyncio.sleep(0)

    sender = Sender(Producer())  # type: ignore[arg-type]
    await sender.send("fine", b"v", b"k")
    await sender.flush()
    await sender.send("refused", b"v", b"k")
    with pytest.raises(TopicAuthorizationFailedError):
        await sender.flush()
