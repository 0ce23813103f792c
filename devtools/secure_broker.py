"""`gateway local up --secure`: the project's broker with TLS, SCRAM users and ACLs.

Built like the plaintext one (`devtools.local_broker`: the same jars, KRaft, loopback), in its own
state folder (`<state>/secure`, free ports), so it never touches a plaintext broker:

* a throwaway CA and broker certificate (`devtools.certs`, made with `cryptography`) for one
  SASL_SSL listener on 127.0.0.1 (hostname verification holds: the certificate names it);
* SCRAM-SHA-256 and SCRAM-SHA-512 users created at format time (`kafka-storage format
  --add-scram`): `broker-admin` (the only super user; the broker's own login; a name no sink
  can have, as sink names hold no `-`, and refused as any other user's name), the gateway's
  principal, the privacy team's (`privacy`: `gateway consent`, `gateway subject-report`) and one
  principal per sink (the partners), each with a random password;
* the StandardAuthorizer with `allow.everyone.if.no.acl.found=false`, and exactly the ACLs that
  `gateway acls --format kafka-acls` prints for the config, parsed and added in one JVM through
  Kafka's Admin API (`devtools/java/AddAcls.java`; the cached jars hold no `kafka-acls.sh`);
* the controller listener speaks SASL PLAIN with the admin's password (KRaft controllers cannot
  use SCRAM), on loopback.

Passwords land in `credentials.json` (owner-only, in an owner-only folder), and only there and
in the broker's own owner-only properties files; they never reach a log line.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import shlex
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from devtools import local_broker as lb
from devtools.certs import write_tls_files
from gateway.acls import derive_acls, partner_principals, render_json, render_kafka_acls
from gateway.config import load_config
from topologies.security import ClientSecurity

ADMIN = "broker-admin"  # the super user: sink names ([a-z][a-z0-9_]*) can never be this
MECHANISM = "SCRAM-SHA-512"
HOST = "127.0.0.1"


@dataclass(frozen=True)
class SecureBroker:
    """A running secure broker: its state, the CA clients trust, and where the passwords are."""

    state: lb.BrokerState
    ca_file: str
    credentials_file: str
    users: tuple[str, ...]
    acl_lines: int

    @property
    def listener(self) -> str:
        """The clients' listener, `SASL_SSL://host:port`."""
        return f"SASL_SSL://{self.state.bootstrap}"


def secure_root() -> Path:
    """The secure broker's state folder, beside the plaintext broker's."""
    return lb.state_root() / "secure"


def read_credentials() -> dict[str, object] | None:
    """The secure broker's `credentials.json`: bootstrap, CA file, mechanism and users."""
    try:
        data: dict[str, object] = json.loads((secure_root() / "credentials.json").read_text())
    except (OSError, ValueError):
        return None
    return data


def client_security(user: str, *, password: str | None = None) -> ClientSecurity:
    """How `user` connects to the running secure broker (its password, unless one is given)."""
    from pydantic import SecretStr

    from topologies.security import resolve_security
    from topologies.settings import KafkaClientSettings

    creds = read_credentials()
    if creds is None:
        raise lb.BrokerError("no secure local broker has been set up in this state folder")
    users = creds["users"]
    assert isinstance(users, dict)
    settings = KafkaClientSettings(
        KAFKA_SECURITY_PROTOCOL="SASL_SSL", KAFKA_SASL_MECHANISM=MECHANISM,
        KAFKA_SASL_USERNAME=user,
        KAFKA_SASL_PASSWORD=SecretStr(password if password is not None else users[user]),
        KAFKA_SSL_CAFILE=creds["ca_file"],
    )  # type: ignore[call-arg]  # fmt: skip
    return resolve_security(settings)


def _private(path: Path, text: str) -> None:
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(text)


def _jaas(module: str, user: str, password: str, extra: str = "") -> str:
    return f'{module} required username="{user}" password="{password}"{extra};'


def _properties(root: Path, port: int, controller: int, admin_password: str, tls: Path) -> str:
    scram = _jaas("org.apache.kafka.common.security.scram.ScramLoginModule", ADMIN, admin_password)
    plain = _jaas(
        "org.apache.kafka.common.security.plain.PlainLoginModule", ADMIN, admin_password,
        f' user_{ADMIN}="{admin_password}"',
    )  # fmt: skip
    base = lb.server_properties(root / "data", port, controller)
    settings = {
        "listeners": f"SASL_SSL://{HOST}:{port},CONTROLLER://{HOST}:{controller}",
        "advertised.listeners": f"SASL_SSL://{HOST}:{port}",
        "inter.broker.listener.name": "SASL_SSL",
        "listener.security.protocol.map": "SASL_SSL:SASL_SSL,CONTROLLER:SASL_PLAINTEXT",
        "sasl.enabled.mechanisms": "SCRAM-SHA-256,SCRAM-SHA-512",
        "sasl.mechanism.inter.broker.protocol": MECHANISM,
        "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config": scram,
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": scram,
        "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
        "listener.name.controller.plain.sasl.jaas.config": plain,
        "sasl.mechanism.controller.protocol": "PLAIN",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(tls / "broker.pem"),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(tls / "ca.pem"),
        "ssl.client.auth": "none",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found": "false",
        "super.users": f"User:{ADMIN}",
    }
    kept = [line for line in base.splitlines() if line.split("=", 1)[0] not in settings]
    return "\n".join(kept) + "\n" + "".join(f"{k}={v}\n" for k, v in settings.items())


def _admin_config(ca: Path, admin_password: str) -> str:
    scram = _jaas("org.apache.kafka.common.security.scram.ScramLoginModule", ADMIN, admin_password)
    return (
        f"security.protocol=SASL_SSL\nsasl.mechanism={MECHANISM}\nsasl.jaas.config={scram}\n"
        f"ssl.truststore.type=PEM\nssl.truststore.location={ca}\n"
    )


def acl_plan(config_dir: Path, app_id: str) -> tuple[list[str], list[str]]:
    """The users to create and the `kafka-acls.sh` lines to run: `gateway acls`' own output."""
    config = load_config(config_dir)
    partners = partner_principals(config, "User:{sink}")
    entries = derive_acls(config, app_id=app_id, partners=partners)
    shown = render_json(entries, gateway_principal="User:gateway", partners=partners)
    named = shown["principals"]
    principals = [named["gateway"], named["privacy"], *named["partners"].values()]
    users = [p.removeprefix("User:") for p in principals]
    if ADMIN in users:  # a partner sharing the super user's name would be a super user
        raise lb.BrokerError(f"the principal User:{ADMIN} is the broker's super user; rename it")
    return users, render_kafka_acls(entries)


def parse_kafka_acls_line(line: str) -> list[tuple[str, str, str, str, str]]:
    """The ACLs one `kafka-acls.sh --add` line adds: (principal, type, pattern, name, operation)."""
    words = shlex.split(line)
    if words[:1] != ["kafka-acls.sh"] or "--add" not in words:
        raise lb.BrokerError(f"not a kafka-acls.sh --add line: {line[:60]}")
    words = [w for w in words[1:] if w != "--add"]
    pairs = list(zip(words[::2], words[1::2], strict=True))
    principal = next(v for k, v in pairs if k == "--allow-principal")
    pattern = next(v for k, v in pairs if k == "--resource-pattern-type")
    ops = [v for k, v in pairs if k == "--operation"]
    return [
        (principal, key[2:], pattern, name, op)
        for key, name in pairs
        if key in ("--topic", "--group")
        for op in ops
    ]


def _add_acls(lines: list[str], jvm: list[str], classpath: str, bootstrap: str, admin: Path) -> int:
    """Add every ACL of `lines` in one JVM (Kafka's Admin API, `devtools/java/AddAcls.java`)."""
    rows = [row for line in lines for row in parse_kafka_acls_line(line)]
    source = Path(__file__).parent / "java" / "AddAcls.java"
    done = subprocess.run(
        [*jvm, "-cp", classpath, str(source), bootstrap, str(admin)],
        input="".join("\t".join(row) + "\n" for row in rows),
        capture_output=True, text=True, check=False, timeout=180,
    )  # fmt: skip
    if done.returncode != 0:
        raise lb.BrokerError(f"adding ACLs failed:\n{(done.stdout + done.stderr)[-1500:]}")
    return len(rows)


def _plan_id(users: list[str], lines: list[str]) -> str:
    return hashlib.sha256("\n".join([*users, *lines]).encode()).hexdigest()[:16]


def running(plan: str | None = None) -> SecureBroker | None:
    """The secure broker an earlier `up --secure` left running, or None.

    With `plan` (`_plan_id` of its users and ACL lines), only a broker set up for that plan.
    """
    data = read_credentials()
    try:
        state = lb.BrokerState(**json.loads((secure_root() / "state.json").read_text()))
    except (OSError, ValueError, TypeError):
        return None
    applied = secure_root() / "acls.applied"
    if data is None or not lb._pid_alive(state.pid) or not applied.exists():
        return None
    if plan is not None and applied.read_text().strip() != plan:
        return None
    if not lb.metadata_ok(state.bootstrap, timeout=10.0, security=client_security(ADMIN)):
        return None
    users = data["users"]
    assert isinstance(users, dict)
    return SecureBroker(
        state, str(data["ca_file"]), str(secure_root() / "credentials.json"),
        tuple(sorted(users)), int(str(data["acl_lines"])),
    )  # fmt: skip


def up(
    config_dir: Path, *, app_id: str = "privacy-gateway", wait_seconds: float = 120.0
) -> tuple[SecureBroker, bool]:
    """Start the secure broker (or reuse a running one); the second value tells which."""
    users, acl_lines = acl_plan(config_dir, app_id)
    plan = _plan_id(users, acl_lines)
    existing = running(plan)
    if existing is not None:
        return existing, True
    lib, _ = lb.assemble(log=False)
    root = secure_root()
    if root.exists():
        down()
        shutil.rmtree(root)
    (root / "data").mkdir(parents=True)
    root.chmod(0o700)
    tls = write_tls_files(root / "tls", [HOST, "localhost"])
    passwords = {name: secrets.token_urlsafe(24) for name in [ADMIN, *users]}
    port, controller = lb.free_port(), lb.free_port()
    props, admin = root / "server.properties", root / "admin.properties"
    _private(props, _properties(root, port, controller, passwords[ADMIN], root / "tls"))
    _private(admin, _admin_config(tls.ca_cert, passwords[ADMIN]))
    log4j = root / "log4j2.properties"
    log4j.write_text(lb._LOG4J2.format(log=root / "server.log"))
    classpath = f"{lib}/*"
    jvm = [lb._java(), lb.HEAP, "-Xms256m", "-XX:+UseG1GC", f"-Dlog4j2.configurationFile={log4j}"]
    scram = [
        word
        for name, password in passwords.items()
        for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512")
        for word in ("--add-scram", f"{mechanism}=[name={name},password={password}]")
    ]
    fmt = subprocess.run(
        [*jvm, "-cp", classpath, "kafka.tools.StorageTool", "format",
         "-t", lb.new_cluster_id(), "-c", str(props), *scram],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if fmt.returncode != 0:
        raise lb.BrokerError(f"formatting the secure broker failed:\n{fmt.stdout[-1500:]}")
    out = (root / "stdout.log").open("ab")
    proc = subprocess.Popen(
        [*jvm, "-cp", classpath, "kafka.Kafka", str(props)],
        stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    out.close()
    lb._CHILDREN[proc.pid] = proc
    state = lb.BrokerState(proc.pid, port, controller, lb.KAFKA_VERSION, str(root))
    (root / "state.json").write_text(json.dumps(asdict(state)))
    credentials = {
        "bootstrap": state.bootstrap, "security_protocol": "SASL_SSL", "sasl_mechanism": MECHANISM,
        "ca_file": str(tls.ca_cert), "users": passwords, "acl_lines": len(acl_lines),
    }  # fmt: skip
    _private(root / "credentials.json", json.dumps(credentials, indent=2))
    try:
        _wait(proc, state, wait_seconds)
        jvm_small = [lb._java(), "-Xmx256m", f"-Dlog4j2.configurationFile={log4j}"]
        _add_acls(acl_lines, jvm_small, classpath, state.bootstrap, admin)
    except BaseException:
        down()  # half set up is no broker: nothing is left running
        raise
    (root / "acls.applied").write_text(f"{plan}\n")
    broker = running()
    if broker is None:
        raise lb.BrokerError("the secure broker stopped answering after its ACLs were added")
    return broker, False


def _wait(proc: subprocess.Popen[bytes], state: lb.BrokerState, wait_seconds: float) -> None:
    admin = client_security(ADMIN)
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            lb._CHILDREN.pop(proc.pid, None)
            tail = (Path(state.state_dir) / "stdout.log").read_text(errors="replace")[-2000:]
            raise lb.BrokerError(f"the secure broker exited with code {proc.returncode}:\n{tail}")
        if lb.metadata_ok(state.bootstrap, timeout=3.0, security=admin):
            return
        time.sleep(0.5)
    lb._stop_pid(proc.pid)
    raise lb.BrokerError(f"the secure broker did not answer on {state.bootstrap}")


def down() -> lb.BrokerState | None:
    """Stop the secure broker of this state folder; returns its state, or None if none ran."""
    path = secure_root() / "state.json"
    try:
        state = lb.BrokerState(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    if lb._pid_alive(state.pid):
        lb._stop_pid(state.pid)
    path.unlink(missing_ok=True)
    return state
