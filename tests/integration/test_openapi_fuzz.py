"""The three HTTP APIs fuzzed from their own OpenAPI documents (schemathesis).

Each service runs as in production (its FastAPI app under uvicorn, on a loopback port) against the
real broker and database of the test stack, with a little real state to reach (a tenant, an
organisation, a volunteer with an open proposal, an in-app message). Schemathesis generates valid
and invalid requests for every documented operation; each example is sent with a token of a role
that may call the operation (so that requests reach the handlers), or as another tenant's caller,
without a token, or with a forged one. Every response must:

- never be a 5xx,
- if it is an error, be ``application/problem+json`` with ``type``, ``title`` and ``status``, and
  name the offending fields when the request was invalid,
- pass schemathesis' conformance checks against the document (status codes, content types and
  response schemas as declared, auth enforced, invalid input refused).

Runs are seeded and derandomized, so that CI sees the same examples on every run.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import pymongo
import pytest
import requests
import schemathesis
import uvicorn
from fastapi import FastAPI
from pymongo import AsyncMongoClient
from schemathesis import Case, Response
from schemathesis.config import SchemathesisConfig
from schemathesis.core import NOT_SET, NotSet
from schemathesis.core.parameters import ParameterLocation

from lotse_devstack import Stack
from lotse_matching.app import create_app as matching_app
from lotse_matching.settings import MatchingSettings
from lotse_notifications import catalogue
from lotse_notifications.app import create_app as notifications_app
from lotse_notifications.settings import NotificationSettings
from lotse_registry.app import create_app as registry_app
from lotse_registry.settings import RegistrySettings
from lotse_runtime import answer_links
from lotse_runtime.auth import Role
from lotse_runtime.problems import PROBLEM_JSON
from tests.integration.matching import support as matching_events
from tests.integration.notifications import support as notification_events
from tests.integration.notifications.support import publish
from tests.integration.registry.support import need_body, organisation_body, tenant_body, volunteer_body
from tests.support import tokens
from tests.support.waiting import eventually

# Schemathesis' own strategies use the random module, which Hypothesis warns about on every run.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module:hypothesis.errors.HypothesisDeprecationWarning"
)

# An issuer the services do not trust: its tokens are well-formed and validly signed, by a stranger.
FORGER = tokens.TokenIssuer()

# A few dozen examples per operation, the same ones on every run.
CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": 9,
        "suppress-health-check": ["too_slow"],  # a busy CI machine is no finding; no timings in tests
        "generation": {"max-examples": 25, "deterministic": True, "database": "none"},
        "operations": [
            {
                # Schema-valid is not always valid for the registry: it checks what a request names
                # against its state (an organisation, the tenant's skill catalogue, a partner's
                # earlier report, a page cursor it handed out) and rules between fields that JSON
                # Schema cannot say (a slot ends after it starts), and refuses with 422 problems.
                "include-path-regex": "^/tenants",
                "checks": {
                    "positive_data_acceptance": {"expected-statuses": ["2xx", "401", "403", "404", "409", "422"]}
                },
            },
            {
                # An answer link's token is opaque: a well-formed one that we did not sign is
                # refused with the documented 400 page, however valid it looks to the schema.
                "include-path-regex": "^/answers/",
                "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "400", "404", "409", "410"]}},
            },
            {
                # A volunteer logs hours only for a need they committed to, on its days: schema-valid
                # hours for another need or day are refused with 422 problems naming the field, an
                # entry id sent again with other hours with 409.
                "include-path-regex": "^/volunteers/me/hours",
                "checks": {
                    "positive_data_acceptance": {"expected-statuses": ["2xx", "401", "403", "404", "409", "422"]}
                },
            },
            {
                # Notifications check a webhook URL against where its host resolves (https to public
                # addresses only) and a template override by rendering it within its limits: refused
                # with 422 problems naming the field, however valid they look to the schema.
                "include-path-regex": "^/(webhooks|templates/)",
                "checks": {
                    "positive_data_acceptance": {"expected-statuses": ["2xx", "401", "403", "404", "409", "422"]}
                },
            },
            {
                # A question is plain text: schema-valid text of blanks or control characters only is
                # refused with 422 naming the field, a need that is not the volunteer's too; a full
                # thread answers 409, and each person posts a limited number of messages (429).
                "include-path-regex": "^/(me/)?threads",
                "checks": {
                    "positive_data_acceptance": {"expected-statuses": ["2xx", "401", "403", "404", "409", "422", "429"]}
                },
            },
        ],
    }
)

# Who may call what: the roles whose tokens reach an operation's handler (operations that declare
# no security need no token).
RoleRule = Callable[[str, str], tuple[Role, ...]]


def registry_roles(method: str, path: str) -> tuple[Role, ...]:
    if path == "/tenants":
        return (Role.PLATFORM_ADMIN,)
    if "/audit" in path:
        return (Role.DATA_PROTECTION_OFFICER,)
    if "/partner/" in path:
        return (Role.PARTNER,)
    if "/volunteers" in path:
        return (Role.COORDINATOR, Role.INITIATIVE_ADMIN, Role.VOLUNTEER)
    if "/needs" in path or "/organisations" in path:
        return (Role.COORDINATOR, Role.INITIATIVE_ADMIN)
    return (Role.COORDINATOR,)


def matching_roles(method: str, path: str) -> tuple[Role, ...]:
    if "/audit" in path:
        return (Role.DATA_PROTECTION_OFFICER,)
    if path.startswith("/tenants/"):
        return (Role.COORDINATOR, Role.INITIATIVE_ADMIN)  # the office's console
    return (Role.VOLUNTEER,)


def notifications_roles(method: str, path: str) -> tuple[Role, ...]:
    if "/audit" in path:
        return (Role.DATA_PROTECTION_OFFICER,)
    return (Role.VOLUNTEER,) if path.startswith("/me/") else (Role.COORDINATOR,)


@dataclass
class Served:
    """One service under uvicorn on a loopback port, with the tenant and ids the fuzzer aims at."""

    app: FastAPI
    settings: RegistrySettings | MatchingSettings | NotificationSettings
    roles: RoleRule
    base_url: str = ""
    tenant: str = ""
    known_ids: dict[str, str] = field(default_factory=dict)  # parameter or body field -> something that exists
    subject: str = field(default_factory=lambda: str(uuid.uuid4()))

    def token(self, role: Role, tenant: str | None) -> str:
        organisation = self.known_ids.get("organisation_id") if role is Role.INITIATIVE_ADMIN else None
        subject = self.known_ids.get("volunteer_id", self.subject) if role is Role.VOLUNTEER else self.subject
        return tokens.issue(subject, [role], tenant=tenant, organisation=organisation)


def forged_token() -> str:
    """A well-formed token of an issuer the services do not know."""
    return FORGER.issue(str(uuid.uuid4()), list(Role), tenant="anywhere")


class Uvicorn:
    """An app under uvicorn in a thread of its own, lifespan included, as ``lotse_runtime.serve``
    runs it in production."""

    def __init__(self, app: FastAPI) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, name="fuzzed-service", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def base_url(self, timeout: float = 60.0) -> str:
        """Once started (its lifespan ran): where it listens."""
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the service did not start")
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.server.servers[0].sockets[0].getsockname()[1]}"

    def stop(self) -> None:
        self.server.should_exit = True

    def join(self) -> None:
        self.thread.join(timeout=30)


# --- the services ------------------------------------------------------------------------------


@dataclass
class Services:
    registry: Served
    matching: Served
    notifications: Served


@pytest.fixture(scope="module")
def services(stack: Stack) -> Iterator[Services]:
    """The three services, started side by side (each joins its consumer groups, which takes
    seconds), with a little real state each for the fuzzer to reach."""
    prefix = "fz" + uuid.uuid4().hex[:8]
    common: dict[str, Any] = {"kafka_bootstrap": stack.kafka_bootstrap, "mongo_url": stack.mongo_url}
    registry_settings = RegistrySettings(
        **common,
        database=f"registry_{prefix}",
        consumer_group=f"registry-{prefix}",
        run_consumers=False,  # partner commands and match outcomes take no part in its HTTP API
    )
    matching_settings = MatchingSettings(
        **common,
        database=f"matching_{prefix}",
        consumer_group=f"matching-{prefix}",
        person_keys_consumer_group=f"matching-keys-{prefix}",
        partner_consumer_group=f"matching-partner-{prefix}",
        answer_link_secret=matching_events.ANSWER_LINK_SECRET,
        public_rate_limit="100000/minute",  # the fuzzer is one client; the limit has tests of its own
    )
    notifications_settings = NotificationSettings(
        **common,
        database=f"notifications_{prefix}",
        consumer_group=f"notifications-{prefix}",
        person_keys_consumer_group=f"notifications-keys-{prefix}",
        tenant_pattern=rf"{prefix}-[a-z0-9-]+",
        weekly_digest=False,
        worker_poll_seconds=0.2,
    )
    running = Services(
        Served(registry_app(registry_settings), registry_settings, registry_roles, tenant=f"{prefix}-r"),
        Served(matching_app(matching_settings), matching_settings, matching_roles, tenant=f"{prefix}-m"),
        Served(
            notifications_app(notifications_settings), notifications_settings, notifications_roles, tenant=f"{prefix}-n"
        ),
    )
    everyone = (running.registry, running.matching, running.notifications)
    servers = [Uvicorn(served.app) for served in everyone]
    for server in servers:
        server.start()
    try:
        for served, server in zip(everyone, servers, strict=True):
            served.base_url = server.base_url()
        seed_registry(running.registry)
        asyncio.run(seed_by_events(stack, running))
        yield running
    finally:
        for server in servers:
            server.stop()
        for server in servers:
            server.join()
        client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(stack.mongo_url)
        with client:
            for served in everyone:
                client.drop_database(served.settings.database)


def seed_registry(served: Served) -> None:
    """A tenant with an organisation, a volunteer and a need, so that generated requests can
    name resources that exist."""
    with requests.Session() as http:

        def post(path: str, body: dict[str, Any], role: Role) -> dict[str, Any]:
            tenant = None if role is Role.PLATFORM_ADMIN else served.tenant
            token = tokens.issue("seed", [role], tenant=tenant)
            response = http.post(served.base_url + path, json=body, headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 201, response.text
            return response.json()

        post("/tenants", tenant_body(served.tenant), Role.PLATFORM_ADMIN)
        organisation = post(f"/tenants/{served.tenant}/organisations", organisation_body(), Role.COORDINATOR)
        organisation_id = organisation["organisation_id"]
        volunteer = post(f"/tenants/{served.tenant}/volunteers", volunteer_body(organisation_id), Role.COORDINATOR)
        need = post(f"/tenants/{served.tenant}/needs", need_body(organisation_id), Role.COORDINATOR)
    served.known_ids.update(
        organisation_id=organisation_id, volunteer_id=volunteer["volunteer_id"], need_id=need["need_id"]
    )


async def seed_by_events(stack: Stack, running: Services) -> None:
    """Registry events as the registry publishes them: for matching a volunteer with an open
    proposal (and its signed answer link), for notifications a known tenant and an in-app message."""
    bootstrap = stack.kafka_bootstrap
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongo_url, tz_aware=True)
    try:
        matching, notifications = running.matching, running.notifications
        matching_db = client[matching.settings.database]
        notifications_db = client[notifications.settings.database]

        volunteer = matching_events.registered(matching.tenant)
        await publish(bootstrap, matching_events.tenant_event(matching.tenant), volunteer)
        reader = notification_events.registered(notifications.tenant, channels=("in_app",))
        await publish(bootstrap, notification_events.onboarded(notifications.tenant), reader)

        # Topics are not ordered among each other: the need only once matching knows the volunteer.
        volunteer_key = f"{matching.tenant}:{volunteer.subject}"
        await eventually(lambda: matching_db.volunteers.find_one({"_id": volunteer_key}), what="volunteer known")
        need = matching_events.opened(matching.tenant)
        await publish(bootstrap, need)
        proposal = await eventually(
            lambda: matching_db.proposals.find_one({"tenant": matching.tenant, "need_id": need.subject}),
            what="a proposal",
        )
        assert isinstance(matching.settings, MatchingSettings)
        secret = answer_links.secret_value(matching.settings.answer_link_secret)
        matching.known_ids.update(
            organisation_id=matching_events.ORGANISATION,  # the need's and the volunteer's
            volunteer_id=str(volunteer.subject),
            need_id=str(need.subject),
            proposal_id=proposal["_id"],
            token=answer_links.sign(secret, proposal["_id"], matching.tenant, proposal["expires_at"]),
        )

        message = await eventually(
            lambda: notifications_db.messages.find_one({"tenant": notifications.tenant}), what="an in-app message"
        )
        notifications.known_ids.update(
            volunteer_id=str(reader.subject), message_id=message["_id"], kind=catalogue.WELCOME
        )
    finally:
        await client.close()


# --- one request and what its response must be ------------------------------------------------

# Mostly callers with a fitting role of the path's tenant, so that requests reach the handlers.
CALLERS = ("member",) * 6 + ("stranger", "anonymous", "forged")


@dataclass(frozen=True)
class Caller:
    kind: str  # member, stranger (another tenant), anonymous (no token) or forged (foreign key)
    role_choice: int  # which of the operation's fitting roles
    aim_at_known: bool  # name existing resources (path, body) instead of generated ids
    request_key: str  # the same for the same request: an Idempotency-Key that is reused only for a repeat

    @classmethod
    def of(cls, case: Case) -> Caller:
        """Derived from the generated request itself rather than drawn with ``@schema.given``
        (which would drop the documented examples and the coverage phase), so that a replayed
        or shrunk example keeps its caller. Documented examples are sent as members."""
        digest = hashlib.sha256(request_text(case).encode()).digest()
        phase = case.meta.phase.name.value if case.meta is not None else ""
        kind = "member" if phase == "examples" else CALLERS[digest[0] % len(CALLERS)]
        return cls(kind, digest[1], digest[2] % 2 == 0, digest.hex()[:32])


def request_text(case: Case) -> str:
    """The generated request as canonical text: the same request gives the same text in every
    process (``repr`` of a body-less case held a memory address, so callers changed run to run)."""
    body = None if isinstance(case.body, NotSet) else case.body
    generated = [case.method.upper(), case.path, case.path_parameters, case.query, body]
    return json.dumps(generated, sort_keys=True, default=repr)


def exercise(case: Case, served: Served) -> None:
    caller = Caller.of(case)
    case = aimed_copy(case)
    auth = caller_headers(case, served, caller)
    response = case.call(base_url=served.base_url, headers=auth)
    try:
        assert_problem_contract(case, response)
        case.validate_response(response, headers=auth)
    except AssertionError as failure:
        # What reproduces it: the request itself (replay it against `make run`) and how it was made.
        reproduce = case.as_curl_command(headers=auth, base_url=served.base_url)
        raise AssertionError(
            f"{failure}\n\nCaller: {caller}\nSeed: {CONFIG.seed}\nReproduce with:\n  {reproduce}"
        ) from failure


def aimed_copy(case: Case) -> Case:
    """A copy of the case to aim and send: schemathesis may hand the same case object out again
    (its coverage phase does), so changing it in place leaked one example's ids into the next."""
    return Case(
        operation=case.operation,
        method=case.method,
        path=case.path,
        id=case.id,
        path_parameters=copy.deepcopy(case.path_parameters),
        headers=copy.deepcopy(case.headers),
        cookies=copy.deepcopy(case.cookies),
        query=copy.deepcopy(case.query),
        body=copy.deepcopy(case.body),
        media_type=case.media_type,
        multipart_content_types=case.multipart_content_types,
        meta=copy.deepcopy(case.meta),
    )


def caller_headers(case: Case, served: Served, caller: Caller) -> dict[str, str]:
    """Aims the case at the served tenant (and at known resources), and returns the caller's
    Authorization header."""
    path_parameters = case.path_parameters
    for name in path_parameters:
        if name == "tenant":
            path_parameters[name] = served.tenant
        elif caller.aim_at_known and name in served.known_ids:
            path_parameters[name] = served.known_ids[name]
    valid_body = case.meta is None or not case.meta.is_negative_at(ParameterLocation.BODY)
    if caller.aim_at_known and valid_body and isinstance(case.body, dict):
        for name in case.body.keys() & served.known_ids.keys():
            case.body[name] = served.known_ids[name]  # e.g. the need's organisation
    # Tokens go in as explicit headers, so that schemathesis knows them for real credentials and
    # checks that the operation refuses the same request without them or with a wrong one. A
    # request whose headers schemathesis made invalid (or left out) on purpose goes as generated.
    auth: dict[str, str] = {}
    secured = bool(case.operation.definition.raw.get("security"))
    invalid_headers = case.meta is not None and case.meta.is_negative_at(ParameterLocation.HEADER)
    if not invalid_headers and case.headers and "Idempotency-Key" in case.headers:
        # A generated key is often the same for different requests, which is refused (422) by design.
        case.headers["Idempotency-Key"] = caller.request_key
    if secured and not invalid_headers:
        roles = served.roles(case.method.upper(), case.operation.path)
        role = roles[caller.role_choice % len(roles)]
        if caller.kind == "member":
            auth["Authorization"] = f"Bearer {served.token(role, served.tenant)}"
        elif caller.kind == "stranger":
            auth["Authorization"] = f"Bearer {served.token(role, 'elsewhere')}"
        elif caller.kind == "forged":
            auth["Authorization"] = f"Bearer {forged_token()}"
        elif case.headers:
            case.headers.pop("Authorization", None)
    return auth


def assert_problem_contract(case: Case, response: Response) -> None:
    what = f"{case.method.upper()} {case.formatted_path} -> {response.status_code}: {response.text[:500]}"
    if case.operation.path == "/ready" and response.status_code == 503:
        return  # a probe's documented "not now" (e.g. a broker ping slower than its timeout), not a failure
    assert response.status_code < 500, what
    if response.status_code < 400:
        return
    media_type = response.headers.get("content-type", [""])[0].split(";")[0].strip()
    documented = case.operation.definition.raw.get("responses", {}).get(str(response.status_code), {})
    if media_type in ("text/html", "text/plain") and media_type in documented.get("content", {}):
        # Documented as such: a page for people in a browser (answer links), or the calendar
        # feed's bare 404 for calendar applications, which show no problem documents.
        return
    assert media_type == PROBLEM_JSON, what
    problem = response.json()
    assert isinstance(problem.get("type"), str) and isinstance(problem.get("title"), str), what
    assert problem.get("status") == response.status_code, what
    if problem["title"] == "Invalid request":
        errors = problem.get("errors")
        assert errors and all(isinstance(error.get("field"), str) and error["field"] for error in errors), what


# --- the fuzz tests ---------------------------------------------------------------------------

REGISTRY = schemathesis.openapi.from_dict(registry_app().openapi(), config=CONFIG)
MATCHING = schemathesis.openapi.from_dict(matching_app().openapi(), config=CONFIG)
NOTIFICATIONS = schemathesis.openapi.from_dict(notifications_app().openapi(), config=CONFIG)


@REGISTRY.parametrize()
def test_registry_api(case: Case, services: Services) -> None:
    exercise(case, services.registry)


@MATCHING.parametrize()
def test_matching_api(case: Case, services: Services) -> None:
    exercise(case, services.matching)


@NOTIFICATIONS.parametrize()
def test_notifications_api(case: Case, services: Services) -> None:
    exercise(case, services.notifications)


# --- the fuzz itself is reproducible ------------------------------------------------------------


def test_the_same_request_gets_the_same_caller_in_every_process() -> None:
    """Another process holds schemathesis' 'no body' marker at another address; the caller (and
    so every request sent) must not depend on it."""
    operation = MATCHING["/health"]["GET"]
    here, elsewhere = operation.Case(), operation.Case()
    elsewhere.body = NotSet()
    assert here.body is NOT_SET and elsewhere.body is not NOT_SET
    assert Caller.of(here) == Caller.of(elsewhere)


def test_aiming_a_case_leaves_the_generated_case_as_it_was() -> None:
    """Schemathesis may hand out the same case again; aiming it at known resources must not leak
    one example's ids into the next."""
    operation = MATCHING["/answers/{token}"]["POST"]
    generated = operation.Case(
        path_parameters={"token": "generated"},
        body={"choice": "accept"},
        media_type="application/x-www-form-urlencoded",
    )
    served = Served(app=FastAPI(), settings=cast(Any, None), roles=matching_roles, known_ids={"token": "known"})
    aimed = aimed_copy(generated)
    caller_headers(aimed, served, Caller("member", 0, aim_at_known=True, request_key="k"))
    assert aimed.path_parameters == {"token": "known"}
    assert generated.path_parameters == {"token": "generated"}
    assert generated.body == {"choice": "accept"}
