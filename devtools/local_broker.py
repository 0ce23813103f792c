"""A real single-node Kafka (KRaft) broker on loopback, owned by the project.

It is assembled from Maven Central jars (`kafka_2.13` plus the log4j2 binding the published POM
leaves out, and `kafka-tools` for the perf tools the benchmark runs) into a cache folder keyed
by the Kafka version, then reused with no download. The
broker's state (config, data, log, pid) lives in a state folder; `up` reuses a broker that an
earlier `up` left running, `down` stops it and leaves no process behind.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from gateway.errors import GatewayError
from topologies.security import PLAINTEXT, ClientSecurity

KAFKA_VERSION = "4.0.2"
LOG4J_VERSION = "2.24.3"
DEFAULT_PORT = 9092
DEFAULT_CONTROLLER_PORT = 9093
HEAP = "-Xmx768m"

_POM = """<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.gateway</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>{kafka}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka-tools</artifactId>
      <version>{kafka}</version>
      <exclusions>
        <exclusion>
          <!-- only the Connect tools need it (jetty, jersey): not the perf tools -->
          <groupId>org.apache.kafka</groupId>
          <artifactId>connect-runtime</artifactId>
        </exclusion>
      </exclusions>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j2-impl</artifactId>
      <version>{log4j}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-core</artifactId>
      <version>{log4j}</version>
    </dependency>
  </dependencies>
  <build>
    <plugins>
      <plugin>
        <groupId>org.apache.maven.plugins</groupId>
        <artifactId>maven-dependency-plugin</artifactId>
        <version>3.8.1</version>
      </plugin>
    </plugins>
  </build>
</project>
"""

_LOG4J2 = """status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = WARN
logger.server.name = kafka.server.KafkaRaftServer
logger.server.level = INFO
"""


# Brokers this process started, kept so their Popen objects are not collected while Kafka runs
# (a ResourceWarning) and so `down` can reap them.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


class BrokerError(GatewayError, RuntimeError):
    """The local broker could not be assembled, started, or reached."""


@dataclass(frozen=True)
class BrokerState:
    pid: int
    port: int
    controller_port: int
    kafka_version: str
    state_dir: str

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"


def cache_root() -> Path:
    env = os.environ.get("GATEWAY_CACHE_DIR")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "privacy-gateway"


def state_root() -> Path:
    env = os.environ.get("GATEWAY_STATE_DIR")
    return Path(env) if env else cache_root() / "local-broker"


def jars_dir(version: str = KAFKA_VERSION) -> Path:
    return cache_root() / f"kafka-{version}" / "lib"


def assemble(version: str = KAFKA_VERSION, *, log: bool = True) -> tuple[Path, bool]:
    """Return the folder of broker jars, running Maven only when the cache lacks them.

    The second value tells whether anything was downloaded.
    """
    lib = jars_dir(version)
    marker = lib / ".complete"
    if marker.exists():
        if not (lib / f"kafka-tools-{version}.jar").exists():
            _add_tools(lib, version, log=log)  # a cache assembled before the tools were added
            return lib, True
        return lib, False
    work = lib.parent
    if lib.exists():
        shutil.rmtree(lib)
    if log:
        print(f"assembling Kafka {version} from Maven Central into {lib} (first run only)")
    _maven_copy(version, lib)
    if not any(lib.glob("kafka_2.13-*.jar")):
        raise BrokerError(f"Maven ran but no kafka_2.13 jar is in {lib}")
    shutil.rmtree(work / "m2", ignore_errors=True)  # the jars are copied; keep the cache small
    marker.write_text(version)
    return lib, True


def _maven_copy(version: str, into: Path) -> None:
    """Copy the runtime jars of `_POM` (broker, tools, log4j2 binding) into `into` with Maven."""
    if shutil.which("mvn") is None:
        raise BrokerError("Maven (mvn) is needed once to fetch the Kafka jars; it is not on PATH")
    work = jars_dir(version).parent
    work.mkdir(parents=True, exist_ok=True)
    pom = work / "pom.xml"
    pom.write_text(_POM.format(kafka=version, log4j=LOG4J_VERSION))
    cmd = [
        "mvn", "-B", "-q", "-f", str(pom),
        f"-Dmaven.repo.local={work / 'm2'}",
        "dependency:copy-dependencies",
        f"-DoutputDirectory={into}", "-DincludeScope=runtime",
    ]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = (result.stdout + result.stderr)[-2000:]
        raise BrokerError(f"Maven could not assemble Kafka {version}:\n{tail}")


def _add_tools(lib: Path, version: str, *, log: bool) -> None:
    """Add `kafka-tools` and its runtime dependencies to an assembled lib folder, in place.

    Brokers of other state folders may be running from `lib`, so nothing there is removed or
    replaced: the jars are resolved together with the broker's (one version of each artifact),
    staged beside it, and only files `lib` lacks are moved in, each under a temporary name
    first (the JVM's `lib/*` only matches names ending in .jar).
    """
    work = lib.parent
    staging = work / f"tools-staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    if log:
        print(f"adding kafka-tools {version} from Maven Central to {lib} (first run only)")
    try:
        _maven_copy(version, staging)
        tools = staging / f"kafka-tools-{version}.jar"
        if not tools.exists():
            raise BrokerError(f"Maven ran but no kafka-tools jar is in {staging}")
        for jar in sorted(staging.glob("*.jar"), key=lambda p: p == tools):  # tools jar last
            target = lib / jar.name
            if not target.exists():
                partial = lib / f".{jar.name}.partial"
                shutil.copyfile(jar, partial)
                partial.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(work / "m2", ignore_errors=True)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _choose_ports() -> tuple[int, int]:
    port = DEFAULT_PORT if _port_free(DEFAULT_PORT) else free_port()
    controller = DEFAULT_CONTROLLER_PORT
    if controller == port or not _port_free(controller):
        controller = free_port()
    return port, controller


def server_properties(data_dir: Path, port: int, controller_port: int) -> str:
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(data_dir),
        "num.partitions": "1",
        "auto.create.topics.enable": "false",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "4",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "4",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "log.segment.bytes": str(64 * 1024 * 1024),
        "log.cleaner.dedupe.buffer.size": str(8 * 1024 * 1024),
        "num.network.threads": "2",
        "num.io.threads": "4",
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise BrokerError("Java 17+ is needed to run the local broker; `java` is not on PATH")
    return found


def new_cluster_id() -> str:
    """A random KRaft cluster id; like Kafka's own, never starting with "-", which the storage
    tool's argument parser would take for an option (1 in 64 base64 ids would)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child (started by this process) counts as gone.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def read_state() -> BrokerState | None:
    path = state_root() / "state.json"
    try:
        raw = json.loads(path.read_text())
        return BrokerState(**raw)
    except (OSError, ValueError, TypeError):
        return None


def running_state() -> BrokerState | None:
    """The broker an earlier `up` left running, or None (stale state is cleared)."""
    state = read_state()
    if state is None:
        return None
    if _pid_alive(state.pid) and metadata_ok(state.bootstrap, timeout=10.0):
        return state
    if _pid_alive(state.pid):
        raise BrokerError(
            f"a local broker process (pid {state.pid}) is alive but does not answer on "
            f"{state.bootstrap}; run `gateway local down` and try again"
        )
    (state_root() / "state.json").unlink(missing_ok=True)
    return None


def metadata_ok(
    bootstrap: str, *, timeout: float = 5.0, security: ClientSecurity = PLAINTEXT
) -> bool:
    """True when the broker answers a metadata request (authenticating with `security`)."""
    from aiokafka.admin import AIOKafkaAdminClient

    host, _, port = bootstrap.rpartition(":")
    try:  # a refused TCP connect is the common "not yet" answer; skip aiokafka's noisy retry
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError:
        return False

    async def probe() -> bool:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=bootstrap, request_timeout_ms=3000, **security.aiokafka()
        )
        try:
            await asyncio.wait_for(admin.start(), timeout)
            await asyncio.wait_for(admin.describe_cluster(), timeout)
            return True
        except Exception:
            return False
        finally:
            with contextlib.suppress(Exception):
                await admin.close()

    return asyncio.run(probe())


def up(*, wait_seconds: float = 90.0, log: bool = True) -> tuple[BrokerState, bool]:
    """Start the broker, or reuse a running one. The second value tells whether it was reused."""
    existing = running_state()
    if existing is not None:
        return existing, True
    lib, _ = assemble(log=log)
    root = state_root()
    if root.exists():
        shutil.rmtree(root)
    data = root / "data"
    data.mkdir(parents=True)
    port, controller_port = _choose_ports()
    props = root / "server.properties"
    props.write_text(server_properties(data, port, controller_port))
    log4j = root / "log4j2.properties"
    log4j.write_text(_LOG4J2.format(log=root / "server.log"))
    classpath = f"{lib}/*"
    java = _java()
    jvm = [java, HEAP, "-Xms256m", "-XX:+UseG1GC", f"-Dlog4j2.configurationFile={log4j}"]
    cluster_id = new_cluster_id()
    fmt = subprocess.run(
        [*jvm, "-cp", classpath, "kafka.tools.StorageTool", "format",
         "-t", cluster_id, "-c", str(props)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if fmt.returncode != 0:
        raise BrokerError(f"formatting the broker storage failed:\n{fmt.stdout}{fmt.stderr}")
    return _launch(root, port, controller_port, wait_seconds=wait_seconds)


def _jvm(root: Path) -> list[str]:
    log4j = root / "log4j2.properties"
    return [_java(), HEAP, "-Xms256m", "-XX:+UseG1GC", f"-Dlog4j2.configurationFile={log4j}"]


def _launch(
    root: Path, port: int, controller_port: int, *, wait_seconds: float
) -> tuple[BrokerState, bool]:
    """Start the broker of the formatted state folder `root` and wait until it answers."""
    lib = jars_dir()
    out = (root / "stdout.log").open("ab")
    proc = subprocess.Popen(
        [*_jvm(root), "-cp", f"{lib}/*", "kafka.Kafka", str(root / "server.properties")],
        stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    out.close()
    _CHILDREN[proc.pid] = proc
    state = BrokerState(proc.pid, port, controller_port, KAFKA_VERSION, str(root))
    (root / "state.json").write_text(json.dumps(asdict(state)))
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            _CHILDREN.pop(proc.pid, None)
            tail = (root / "stdout.log").read_text(errors="replace")[-2000:]
            (root / "state.json").unlink(missing_ok=True)
            raise BrokerError(f"the broker exited with code {proc.returncode}:\n{tail}")
        if metadata_ok(state.bootstrap, timeout=3.0):
            return state, False
        time.sleep(0.3)
    _stop_pid(proc.pid)
    raise BrokerError(f"the broker did not answer on {state.bootstrap} in {wait_seconds:.0f}s")


def restart(*, down_seconds: float = 0.0, wait_seconds: float = 90.0) -> BrokerState:
    """Stop the running broker and start it again on the same ports, keeping its data.

    `down_seconds` is how long it stays down (an outage, for the fault suite). Raises
    `BrokerError` when no broker of this state folder runs, or when it does not come back.
    """
    state = running_state()
    if state is None:
        raise BrokerError(f"no running broker in {state_root()} to restart")
    _stop_pid(state.pid)
    time.sleep(down_seconds)
    root = Path(state.state_dir)
    return _launch(root, state.port, state.controller_port, wait_seconds=wait_seconds)[0]


def _stop_pid(pid: int, *, grace: float = 30.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _pid_alive(pid):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.2)
    if _pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    child = _CHILDREN.pop(pid, None)
    if child is not None:
        child.wait(timeout=10)


def down() -> BrokerState | None:
    """Stop the broker an earlier `up` started; returns its state, or None if none ran."""
    state = read_state()
    if state is None:
        return None
    if _pid_alive(state.pid):
        _stop_pid(state.pid)
    (state_root() / "state.json").unlink(missing_ok=True)
    return state
