"""The whole platform on one machine: broker, database, SMTP sink, SMS sink, the local OpenID
provider and the services as separate processes under one supervisor, with prefixed logs. Used by
``lotse up`` and by the end-to-end tests, so that both run the same thing.

Each process's whole output goes to its log file; the terminal (``echo``) gets the lines that
need a person: warnings, errors and whatever is not a log line (a traceback, the sink's banner)."""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from lotse_contracts import topics_for_tenants
from lotse_devstack import Stack, StackError, ensure_topics, running_stack
from lotse_devstack.embedded import mongo_answers
from lotse_devstack.idp import Idp, IdpError, running_idp
from lotse_devstack.processes import ManagedProcess, free_port, port_answers, port_is_free
from lotse_runtime.auth import AuthConfig
from lotse_runtime.secrets import development_secret
from lotse_runtime.structured_logging import LogFormat, console_level

READY_TIMEOUT_SECONDS = 60.0
_COLOURS = ["\033[36m", "\033[35m", "\033[33m", "\033[32m", "\033[34m"]
_LEVEL_COLOURS = {"warning": "\033[33m", "error": "\033[31m", "critical": "\033[1;31m"}
_RESET = "\033[0m"
# Levels that stay in the log files: the terminal shows what needs a person.
QUIET_LEVELS = frozenset({"debug", "info"})


@dataclass(frozen=True)
class Ports:
    kafka: int = 9092
    mongo: int = 27017
    smtp: int = 2525
    mailbox: int = 8025
    sms: int = 8026
    registry: int = 8001
    matching: int = 8002
    notifications: int = 8003
    idp: int = 8010
    portal: int = 8000

    def services(self) -> dict[str, int]:
        return {"registry": self.registry, "matching": self.matching, "notifications": self.notifications}


@dataclass
class Platform:
    stack: Stack
    ports: Ports
    # The installation's folder: the services run in development mode and keep their generated
    # secrets under home/secrets/; the local OpenID provider its keys and accounts under home/idp/.
    home: Path
    # Whose tokens the services accept.
    auth: AuthConfig | None = None
    # The local OpenID provider, unless the platform was given another issuer.
    idp: Idp | None = None
    processes: dict[str, ManagedProcess] = field(default_factory=dict)
    log_format: LogFormat = "json"
    echo: Callable[[str], None] | None = None
    # The live replicas of each service (process names: "registry", "registry-2", ...) and the HTTP
    # port of each; requests go to them in turn, as a load balancer would spread them (issue 19).
    replicas: dict[str, list[str]] = field(default_factory=dict)
    http_ports: dict[str, int] = field(default_factory=dict)
    _turns: Iterator[int] = field(default_factory=itertools.count)

    def auth_config(self) -> AuthConfig:
        """Whose tokens the services accept: the local provider's, or the issuer the platform was given."""
        if self.auth is None:
            raise RuntimeError("the platform has no token issuer yet")
        return self.auth

    def url(self, service: str) -> str:
        """A live replica of the service, each in turn (the first while there is only one)."""
        live = self.replicas.get(service)
        if not live:
            return f"http://127.0.0.1:{self.ports.services()[service]}"
        return f"http://127.0.0.1:{self.http_ports[live[next(self._turns) % len(live)]]}"

    def replica_urls(self, service: str) -> list[str]:
        """Every live replica of the service (the one it has without ``add_replica``)."""
        return [self.replica_url(name) for name in self.replicas.get(service, [service])]

    def replica_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.http_ports[name]}"

    def add_replica(self, service: str) -> str:
        """Start one more replica of a service on a port of its own, wait until it is ready and
        return its name (``registry-2``, ``registry-3``, ...): the same program, database and
        consumer groups as the others."""
        (name,) = self.add_replicas([service])
        return name

    def add_replicas(self, services: Sequence[str]) -> list[str]:
        """``add_replica`` for each of ``services`` (a service may repeat), all started before the
        first is waited for."""
        started = [self._start_replica(service) for service in services]
        for service, name in zip(services, started, strict=True):
            _wait_ready(self.processes[name], f"{self.replica_url(name)}/ready", READY_TIMEOUT_SECONDS)
            self.replicas.setdefault(service, [service]).append(name)
        return started

    def _start_replica(self, service: str) -> str:
        taken = [name for name in self.processes if name == service or name.startswith(f"{service}-")]
        name, port = f"{service}-{len(taken) + 1}", free_port()
        environment = service_environment(
            self.stack, self.ports, service, os.environ, self.home, self.log_format, self.auth
        )
        environment["LOTSE_HTTP_PORT"] = str(port)
        process = ManagedProcess(
            name,
            [sys.executable, "-m", f"lotse_{service}"],
            self.stack.log_dir / f"{name}.log",
            env=environment,
            echo=terminal_printer(name, len(self.processes), self.echo, colours=sys.stdout.isatty())
            if self.echo
            else None,
        )
        self.processes[name], self.http_ports[name] = process, port
        process.start()
        return name

    def stop_added_replicas(self) -> None:
        for names in self.replicas.values():
            for name in names[1:]:
                self.processes[name].stop()

    def kill_replica(self, name: str) -> None:
        """SIGKILL one replica for good, as a lost machine would; it leaves the rotation at once."""
        self.processes[name].kill()
        for live in self.replicas.values():
            if name in live:
                live.remove(name)

    @property
    def mailbox_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.mailbox}"

    @property
    def sms_url(self) -> str:
        """The SMS sink: notifications sends SMS here (POST), and people read them here (GET)."""
        return f"http://127.0.0.1:{self.ports.sms}/messages"

    def crash_and_restart(self, service: str) -> None:
        """SIGKILL a service, as a crash would, start it again and wait until it is ready."""
        process = self.processes[service]
        process.kill()
        process.start()
        _wait_ready(process, f"{self.url(service)}/ready", READY_TIMEOUT_SECONDS)

    def crash_and_restart_database(self) -> None:
        """SIGKILL the embedded database and start it again on the same storage and port."""
        database = self.stack.processes["mongodb"]
        database.kill()
        database.start()
        database.wait_until(lambda: mongo_answers(self.ports.mongo), READY_TIMEOUT_SECONDS)


def terminal_printer(name: str, index: int, stream: Callable[[str], None], *, colours: bool) -> Callable[[str], None]:
    """Prints a process's noteworthy lines (see ``console_level``) with its name in front; with
    ``colours``, the name in the process's colour and warnings and errors in theirs."""
    prefix = f"{_COLOURS[index % len(_COLOURS)]}{name:<13}|{_RESET} " if colours else f"{name:<13}| "

    def print_line(line: str) -> None:
        level = console_level(line)
        if level in QUIET_LEVELS:
            return
        if colours and level in _LEVEL_COLOURS:
            line = f"{_LEVEL_COLOURS[level]}{line}{_RESET}"
        stream(prefix + line)

    return print_line


def _wait_ready(process: ManagedProcess, url: str, timeout: float) -> None:
    def ready() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                status: int = response.status
                return status == 200
        except (urllib.error.URLError, OSError):
            return False

    process.wait_until(ready, timeout)


def service_environment(
    stack: Stack,
    ports: Ports,
    service: str,
    base: Mapping[str, str],
    home: Path,
    log_format: LogFormat = "json",
    auth: AuthConfig | None = None,
) -> dict[str, str]:
    """What a service process needs to find the others; the names are the services' settings."""
    environment = dict(base)
    if auth is not None:
        environment.update(
            {"LOTSE_JWT_ISSUER": auth.issuer, "LOTSE_JWT_JWKS_URL": auth.jwks_url, "LOTSE_JWT_AUDIENCE": auth.audience}
        )
    environment.update(
        {
            # Development mode: missing secrets are generated once under home/secrets/ and shared.
            "LOTSE_ENV": "development",
            "LOTSE_HOME": str(home),
            "LOTSE_KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
            "LOTSE_MONGO_URL": stack.mongo_url,
            "LOTSE_HTTP_PORT": str({**ports.services(), "portal": ports.portal}[service]),
            # Each service owns its database, whatever the caller's environment says.
            "LOTSE_DATABASE": service,
            "LOTSE_SMTP_HOST": "127.0.0.1",
            "LOTSE_SMTP_PORT": str(ports.smtp),
            # SMS go to the SMS sink, a stand-in for a real gateway (its token: a development secret).
            "LOTSE_SMS_GATEWAY_URL": f"http://127.0.0.1:{ports.sms}/messages",
            # Notifications signs the answer links in mails; they point at matching's answer pages.
            "LOTSE_ANSWER_LINK_BASE_URL": f"http://127.0.0.1:{ports.matching}",
            # The mails about a question link to its page in the portal.
            "LOTSE_PORTAL_URL": f"http://127.0.0.1:{ports.portal}",
            # The portal calls the three APIs and is reached by browsers at its own port.
            "LOTSE_PUBLIC_URL": f"http://127.0.0.1:{ports.portal}",
            "LOTSE_REGISTRY_URL": f"http://127.0.0.1:{ports.registry}",
            "LOTSE_MATCHING_URL": f"http://127.0.0.1:{ports.matching}",
            "LOTSE_NOTIFICATIONS_URL": f"http://127.0.0.1:{ports.notifications}",
            "LOTSE_LOG_FORMAT": log_format,
            "PYTHONUNBUFFERED": "1",
        }
    )
    return environment


@contextmanager
def running_platform(
    *,
    ports: Ports,
    state_dir: Path,
    tenants: list[str] | None = None,
    echo: Callable[[str], None] | None = print,
    persistent: bool = True,
    kafka_advertised_port: int | None = None,
    log_format: LogFormat = "json",
    auth: AuthConfig | None = None,
) -> Iterator[Platform]:
    """Start everything, wait until each service is ready, stop everything in reverse order.

    ``kafka_advertised_port`` lets the embedded broker send clients to a proxy (fault tests).
    ``log_format`` is the services' (``console`` for a person, ``json`` for tests and tools).
    ``auth``: the issuer whose tokens the services accept (the tests' own); without it the local
    OpenID provider starts on ``ports.idp`` with the accounts in ``<state_dir>/idp/accounts.json``.

    Fails fast with a StackError naming the server if a port is taken or a process does not
    start; whatever had started by then is stopped again.
    """
    _claim_ports(ports, idp=auth is None)
    log_dir = state_dir / "logs"
    # The state folder is the installation's home: absolute, whatever the processes' working folder.
    home = state_dir.resolve()
    with ExitStack() as running:
        stack = running.enter_context(
            running_stack(
                data_dir=state_dir / "data" if persistent else None,
                kafka_port=ports.kafka,
                mongo_port=ports.mongo,
                log_dir=log_dir,
                kafka_advertised_port=kafka_advertised_port,
            )
        )
        asyncio.run(ensure_topics(stack.kafka_bootstrap, topics_for_tenants(tenants or [])))
        platform = Platform(stack, ports, home, auth, log_format=log_format, echo=echo)
        running.callback(platform.stop_added_replicas)
        if auth is None:
            platform.idp = running.enter_context(_local_idp(ports, home, log_dir, echo))
            platform.auth = AuthConfig(platform.idp.issuer, "lotse", jwks_url=platform.idp.jwks_url)
        launches = [
            (
                "mailbox",
                [
                    sys.executable,
                    "-m",
                    "lotse_devstack.smtp_sink",
                    "--smtp-port",
                    str(ports.smtp),
                    "--http-port",
                    str(ports.mailbox),
                ],
                f"http://127.0.0.1:{ports.mailbox}/messages",
            ),
            (
                "sms",
                [sys.executable, "-m", "lotse_devstack.sms_sink", "--port", str(ports.sms)],
                f"http://127.0.0.1:{ports.sms}/health",
            ),
            *(
                (name, [sys.executable, "-m", f"lotse_{name}"], f"http://127.0.0.1:{port}/ready")
                for name, port in ports.services().items()
            ),
            # Last: the web front, once the APIs it calls answer.
            ("portal", [sys.executable, "-m", "lotse_portal"], f"http://127.0.0.1:{ports.portal}/ready"),
        ]
        for index, (name, argv, ready_url) in enumerate(launches):
            if name == "mailbox":
                environment = None
            elif name == "sms":
                # The token notifications generates for itself in development (the same file).
                environment = {**os.environ, "LOTSE_SMS_GATEWAY_TOKEN": development_secret(home, "sms_gateway_token")}
            else:
                environment = service_environment(stack, ports, name, os.environ, home, log_format, platform.auth)
            process = ManagedProcess(
                name,
                argv,
                log_dir / f"{name}.log",
                env=environment,
                echo=terminal_printer(name, index, echo, colours=sys.stdout.isatty()) if echo else None,
            )
            running.callback(process.stop)
            process.start()
            try:
                _wait_ready(process, ready_url, READY_TIMEOUT_SECONDS)
            except RuntimeError as error:
                raise StackError(str(error)) from error
            platform.processes[name] = process
            if name in ports.services():
                platform.http_ports[name] = ports.services()[name]
        yield platform


@contextmanager
def _local_idp(ports: Ports, home: Path, log_dir: Path, echo: Callable[[str], None] | None) -> Iterator[Idp]:
    """The local OpenID provider, with the portal as its client (the portal's development secret)."""
    portal = f"http://127.0.0.1:{ports.portal}"
    printer = terminal_printer("idp", 4, echo, colours=sys.stdout.isatty()) if echo else None

    def shown(line: str) -> None:
        # oidc-provider's notes on Node 22 and its in-memory store are for the log file only.
        if printer is not None and "oidc-provider WARNING" not in line:
            printer(line)

    try:
        with running_idp(
            port=ports.idp,
            state_dir=home / "idp",
            accounts=home / "idp" / "accounts.json",
            # The portal reads the same file (its setting oidc_client_secret, generated in development).
            portal_secret=development_secret(home, "oidc_client_secret"),
            portal_redirect_uris=[f"{portal}/signin/callback"],
            portal_logout_uris=[f"{portal}/"],
            log_path=log_dir / "idp.log",
            echo=shown if echo else None,
        ) as idp:
            yield idp
    except IdpError as error:
        raise StackError(str(error)) from error


def _claim_ports(ports: Ports, *, idp: bool = True) -> None:
    for name, port in (
        ("kafka", ports.kafka),
        ("mongodb", ports.mongo),
        ("smtp sink", ports.smtp),
        ("mailbox (smtp sink http)", ports.mailbox),
        ("sms sink", ports.sms),
        *([("idp (local OpenID provider)", ports.idp)] if idp else []),
        *ports.services().items(),
        ("portal", ports.portal),
    ):
        if not port_is_free(port) or port_answers(port):
            raise StackError(f"{name}: port {port} on 127.0.0.1 is already in use")
