"""The store catalogue: every MongoDB collection of every service, and the personal data in it.

The topic catalogue (`lotse_contracts.topics`) says what travels between the services; this one
says what each service keeps. Both use the vocabulary of `lotse_contracts.personal_data`, and
`lotse privacy report` reads both. It lives with the contracts rather than in each service
because the report (the CLI, also in the operations image) imports no service; a test per
service (`tests/unit/test_data_stores.py`) fails when a service's code uses a collection that is
not declared here.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from lotse_contracts.personal_data import DataCategory, DataSubject, Purpose, RetentionRule


class StoreOwner(StrEnum):
    """A service with its own database (named like the service by default)."""

    REGISTRY = "registry"
    MATCHING = "matching"
    NOTIFICATIONS = "notifications"
    PORTAL = "portal"


class StoredField(BaseModel):
    """A personal field of a collection's documents (a dotted path; `contact.*` for a sub-document)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    category: DataCategory
    purposes: tuple[Purpose, ...]
    subjects: tuple[DataSubject, ...] = (DataSubject.VOLUNTEER,)
    note: str | None = None


class StoredCollection(BaseModel):
    """One collection of one service's database: what it is for, which of its fields are personal,
    which rule ends their life and how they are removed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    owner: StoreOwner
    name: str
    description: str
    personal: tuple[StoredField, ...] = ()
    retention: RetentionRule | None = None  # None: nothing personal in it
    removal: str = "nothing personal to remove"


def _field(
    path: str,
    category: DataCategory,
    *purposes: Purpose,
    subjects: tuple[DataSubject, ...] = (DataSubject.VOLUNTEER,),
    note: str | None = None,
) -> StoredField:
    return StoredField(path=path, category=category, purposes=purposes, subjects=subjects, note=note)


_C = DataCategory
_P = Purpose
_R = RetentionRule
_HOUSEHOLD = (DataSubject.REFUGEE_HOUSEHOLD,)
_ORGANISATION = (DataSubject.ORGANISATION_CONTACT,)
_VOLUNTEER_ID = _field("volunteer_id", _C.IDENTIFIER, _P.COORDINATION)
_VOLUNTEER_ERASURE = "the volunteer's erasure (on request, or the period after their withdrawal)"


def _shared(owner: StoreOwner) -> tuple[StoredCollection, ...]:
    """The collections `lotse_runtime` keeps in every consuming and publishing service's database."""
    return (
        StoredCollection(
            owner=owner,
            name="outbox",
            description="events written with the change that caused them, until the relay has published them",
            personal=(_field("event", _C.CONTACT_DATA, _P.NOTIFICATION, note="whatever the event carries"),),
            retention=_R.SHORT_LIVED,
            removal="published entries expire after 7 days; an erased volunteer's are deleted at once",
        ),
        StoredCollection(
            owner=owner,
            name="outbox_lease",
            description="which replica runs the outbox relay and the retention job",
        ),
        StoredCollection(
            owner=owner,
            name="inbox",
            description="ids of the events already processed, so that a redelivered event is ignored",
            retention=_R.INBOX,
            removal="deleted by the retention job after the dedup window",
        ),
        StoredCollection(
            owner=owner,
            name="retention_rules",
            description="the retention rules and periods in force at the last run of the retention job",
        ),
        StoredCollection(
            owner=owner,
            name="audit",
            description="who changed or read what (actor, role, time, field names, never the values)",
            personal=(
                _field(
                    "actor",
                    _C.IDENTIFIER,
                    _P.COORDINATION,
                    subjects=(DataSubject.OFFICE_STAFF, DataSubject.VOLUNTEER),
                    note="the person acting; the subject of the change by id",
                ),
            ),
            retention=_R.AUDIT_TRAIL,
            removal="expires the audit trail's period after it was written",
        ),
        StoredCollection(
            owner=owner,
            name="person_keys",
            description="each volunteer's data key (wrapped) that opens their sealed fields on the topics",
            personal=(_field("wrapped_key", _C.IDENTIFIER, _P.NOTIFICATION, note="destroyed to shred the data"),),
            retention=_R.WITHDRAWN_VOLUNTEERS,
            removal=f"deleted at {_VOLUNTEER_ERASURE}, and everywhere on the key's tombstone",
        ),
    )


STORES: tuple[StoredCollection, ...] = (
    # -- registry: the system of record ------------------------------------------------------
    StoredCollection(
        owner=StoreOwner.REGISTRY,
        name="tenants",
        description="the municipalities and their settings",
        personal=(
            _field(
                "coordination_email",
                _C.CONTACT_DATA,
                _P.NOTIFICATION,
                subjects=_ORGANISATION,
                note="functional mailbox",
            ),
        ),
        retention=_R.TENANT_LIFETIME,
        removal="changed by the platform admin; deleted with the tenant",
    ),
    StoredCollection(
        owner=StoreOwner.REGISTRY,
        name="organisations",
        description="coordination offices, initiatives and round tables",
        personal=(
            _field(
                "contact_email", _C.CONTACT_DATA, _P.COORDINATION, subjects=_ORGANISATION, note="functional mailbox"
            ),
        ),
        retention=_R.TENANT_LIFETIME,
        removal="changed by the office; deleted with the organisation",
    ),
    StoredCollection(
        owner=StoreOwner.REGISTRY,
        name="volunteers",
        description="the volunteers as registered, with their profile, availability and status",
        personal=(
            _field("contact.*", _C.CONTACT_DATA, _P.NOTIFICATION, _P.COORDINATION),
            _field("home_area", _C.LOCATION, _P.MATCHING),
            _field("skills", _C.SKILLS, _P.MATCHING),
            _field("languages", _C.LANGUAGE_SKILLS, _P.MATCHING),
            _field("certificates", _C.CERTIFICATES, _P.MATCHING),
            _field("availability", _C.AVAILABILITY, _P.MATCHING),
            _field("organisation_id", _C.ENGAGEMENT, _P.COORDINATION),
            _field(
                "contact_person_id",
                _C.IDENTIFIER,
                _P.COORDINATION,
                subjects=(DataSubject.VOLUNTEER, DataSubject.OFFICE_STAFF),
            ),
        ),
        retention=_R.WITHDRAWN_VOLUNTEERS,
        removal=f"{_VOLUNTEER_ERASURE} leaves a tombstone with the random id, status and version only",
    ),
    StoredCollection(
        owner=StoreOwner.REGISTRY,
        name="consents",
        description="each consent a volunteer gave, with its text version and evidence",
        personal=(_VOLUNTEER_ID, _field("*", _C.CONSENT, _P.CONSENT_EVIDENCE)),
        retention=_R.WITHDRAWN_VOLUNTEERS,
        removal=f"deleted at {_VOLUNTEER_ERASURE}",
    ),
    StoredCollection(
        owner=StoreOwner.REGISTRY,
        name="certificate_checks",
        description="certificates the office has seen itself, and their notices",
        personal=(
            _VOLUNTEER_ID,
            _field("kind", _C.CERTIFICATES, _P.MATCHING, _P.COORDINATION, note="only that it was seen (Art. 10)"),
        ),
        retention=_R.WITHDRAWN_VOLUNTEERS,
        removal=f"deleted at {_VOLUNTEER_ERASURE}; revoked by the office",
    ),
    StoredCollection(
        owner=StoreOwner.REGISTRY,
        name="partner_refs",
        description="the partner systems' own ids of volunteers and needs",
        personal=(
            _field(
                "external_ref",
                _C.IDENTIFIER,
                _P.COORDINATION,
                subjects=(DataSubject.VOLUNTEER, DataSubject.REFUGEE_HOUSEHOLD),
            ),
        ),
        retention=_R.WITHDRAWN_VOLUNTEERS,
        removal=f"a volunteer's deleted at {_VOLUNTEER_ERASURE}; a need's when the need is anonymised "
        "(the closed needs' period)",
    ),
    StoredCollection(
        owner=StoreOwner.REGISTRY,
        name="needs",
        description="the needs, their staffing and outcome",
        personal=(
            _field("description", _C.FREE_TEXT, _P.MATCHING, _P.COORDINATION, subjects=_HOUSEHOLD),
            _field("place", _C.LOCATION, _P.MATCHING, subjects=_HOUSEHOLD),
            _field("schedule", _C.AVAILABILITY, _P.MATCHING, subjects=_HOUSEHOLD),
            _field("household_ref", _C.IDENTIFIER, _P.COORDINATION, subjects=_HOUSEHOLD),
            _field(
                "languages",
                _C.LANGUAGE_SKILLS,
                _P.MATCHING,
                subjects=_HOUSEHOLD,
                note="the household's languages may hint at its origin",
            ),
            _field(
                "partner_ref", _C.IDENTIFIER, _P.COORDINATION, subjects=_HOUSEHOLD, note="the partner system's case id"
            ),
            _field("committed", _C.ENGAGEMENT, _P.COORDINATION, note="ids of the volunteers who committed"),
        ),
        retention=_R.CLOSED_NEEDS,
        removal="anonymised the period after it ended: description, exact place, household and partner "
        "references (with the need's partner_refs row), languages and committed volunteers' ids removed (their "
        "number kept), the schedule kept to its days; a volunteer's id is pulled at their erasure",
    ),
    StoredCollection(
        owner=StoreOwner.REGISTRY,
        name="staff",
        description="the office's staff members who are volunteers' contact persons",
        personal=(
            _field("name", _C.CONTACT_DATA, _P.COORDINATION, subjects=(DataSubject.OFFICE_STAFF,)),
            _field("email", _C.CONTACT_DATA, _P.COORDINATION, subjects=(DataSubject.OFFICE_STAFF,)),
        ),
        retention=_R.TENANT_LIFETIME,
        removal="changed or removed by the office",
    ),
    StoredCollection(
        owner=StoreOwner.REGISTRY,
        name="idempotency",
        description="answers to requests with an Idempotency-Key, to repeat them to a retried request",
        personal=(_field("response", _C.CONTACT_DATA, _P.COORDINATION, note="the answer as sent"),),
        retention=_R.SHORT_LIVED,
        removal="expire after 24 hours; an erased volunteer's are deleted at once",
    ),
    StoredCollection(owner=StoreOwner.REGISTRY, name="counters", description="anonymous counts, e.g. of erasures"),
    StoredCollection(owner=StoreOwner.REGISTRY, name="postcodes", description="the tenant's postcodes and places"),
    StoredCollection(
        owner=StoreOwner.REGISTRY, name="migrations", description="one-off upgrades of the stored data, marked done"
    ),
    *_shared(StoreOwner.REGISTRY),
    # -- matching: read models for proposals --------------------------------------------------
    StoredCollection(owner=StoreOwner.MATCHING, name="tenants", description="the tenants' settings (read model)"),
    StoredCollection(
        owner=StoreOwner.MATCHING,
        name="replica_partitions",
        description="which replica's address answers for each partition of the work topic (issue 19)",
    ),
    StoredCollection(
        owner=StoreOwner.MATCHING,
        name="organisations",
        description="organisations (read model)",
        personal=(
            _field(
                "contact_email", _C.CONTACT_DATA, _P.COORDINATION, subjects=_ORGANISATION, note="functional mailbox"
            ),
        ),
        retention=_R.TENANT_LIFETIME,
        removal="replaced by the organisation's next event",
    ),
    StoredCollection(
        owner=StoreOwner.MATCHING,
        name="volunteers",
        description="what matching needs to know about each volunteer (read model, no contact data)",
        personal=(
            _field("home_area", _C.LOCATION, _P.MATCHING),
            _field("skills", _C.SKILLS, _P.MATCHING),
            _field("languages", _C.LANGUAGE_SKILLS, _P.MATCHING),
            _field("certificates", _C.CERTIFICATES, _P.MATCHING),
            _field("availability", _C.AVAILABILITY, _P.MATCHING),
        ),
        retention=_R.WITHDRAWN_VOLUNTEERS,
        removal=f"{_VOLUNTEER_ERASURE} leaves an id with `erased`",
    ),
    StoredCollection(
        owner=StoreOwner.MATCHING,
        name="needs",
        description="open needs and their staffing (read model)",
        personal=(
            _field("details.description", _C.FREE_TEXT, _P.MATCHING, subjects=_HOUSEHOLD),
            _field("details.place", _C.LOCATION, _P.MATCHING, subjects=_HOUSEHOLD),
            _field("details.schedule", _C.AVAILABILITY, _P.MATCHING, subjects=_HOUSEHOLD),
            _field("details.languages", _C.LANGUAGE_SKILLS, _P.MATCHING, subjects=_HOUSEHOLD),
            _field("committed", _C.ENGAGEMENT, _P.COORDINATION),
        ),
        retention=_R.PROPOSALS_OF_CLOSED_NEEDS,
        removal="the period after the need closed (or, closed before that date was kept, after it opened), with "
        "its proposals: description replaced, household reference, postcode and languages removed, the "
        "schedule kept to its days, the point coarsened to about a kilometre; committed volunteers' ids stay "
        "for the statistics until their erasure",
    ),
    StoredCollection(
        owner=StoreOwner.MATCHING,
        name="proposals",
        description="proposals, answers, commitments and who of the office acted",
        personal=(
            _VOLUNTEER_ID,
            _field("reasons", _C.ENGAGEMENT, _P.MATCHING, note="the volunteer's languages, certificates, distance"),
            _field("distance_km", _C.LOCATION, _P.MATCHING),
            _field("score", _C.ENGAGEMENT, _P.MATCHING),
        ),
        retention=_R.PROPOSALS_OF_CLOSED_NEEDS,
        removal="reasons, distance and score removed at the volunteer's erasure and the period after the need closed",
    ),
    StoredCollection(
        owner=StoreOwner.MATCHING,
        name="hours",
        description="hours volunteers report for their engagements",
        personal=(
            _VOLUNTEER_ID,
            _field("note", _C.FREE_TEXT, _P.COORDINATION),
            _field("minutes", _C.ENGAGEMENT, _P.COORDINATION),
        ),
        retention=_R.WITHDRAWN_VOLUNTEERS,
        removal=f"deleted at {_VOLUNTEER_ERASURE}",
    ),
    StoredCollection(
        owner=StoreOwner.MATCHING,
        name="calendar_feeds",
        description="each volunteer's private calendar feed (the hash of its secret)",
        personal=(_VOLUNTEER_ID,),
        retention=_R.WITHDRAWN_VOLUNTEERS,
        removal=f"deleted at {_VOLUNTEER_ERASURE}",
    ),
    StoredCollection(
        owner=StoreOwner.MATCHING,
        name="office_requests",
        description="the office's recent actions, to repeat an answer to a retried request",
        personal=(_field("caller", _C.IDENTIFIER, _P.COORDINATION, subjects=(DataSubject.OFFICE_STAFF,)),),
        retention=_R.SHORT_LIVED,
        removal="expire by a time-to-live index",
    ),
    *_shared(StoreOwner.MATCHING),
    # -- notifications: contacts, deliveries, messages ------------------------------------------
    StoredCollection(
        owner=StoreOwner.NOTIFICATIONS,
        name="tenants",
        description="the tenants' settings (read model)",
        personal=(
            _field("coordination_email", _C.CONTACT_DATA, _P.NOTIFICATION, subjects=_ORGANISATION, note="functional"),
        ),
        retention=_R.TENANT_LIFETIME,
        removal="replaced by the tenant's next event",
    ),
    StoredCollection(
        owner=StoreOwner.NOTIFICATIONS,
        name="organisations",
        description="organisations (read model)",
        personal=(
            _field("contact_email", _C.CONTACT_DATA, _P.NOTIFICATION, subjects=_ORGANISATION, note="functional"),
        ),
        retention=_R.TENANT_LIFETIME,
        removal="replaced by the organisation's next event",
    ),
    StoredCollection(
        owner=StoreOwner.NOTIFICATIONS,
        name="contacts",
        description="how to reach each volunteer: the only place with volunteers' addresses outside the registry",
        personal=(
            _field("details.display_name", _C.CONTACT_DATA, _P.NOTIFICATION),
            _field("details.email", _C.CONTACT_DATA, _P.NOTIFICATION),
            _field("details.phone", _C.CONTACT_DATA, _P.NOTIFICATION),
            _field("details.*", _C.COMMUNICATION_PREFERENCES, _P.NOTIFICATION),
        ),
        retention=_R.WITHDRAWN_VOLUNTEERS,
        removal=f"{_VOLUNTEER_ERASURE} leaves a tombstone without contact data",
    ),
    StoredCollection(
        owner=StoreOwner.NOTIFICATIONS,
        name="deliveries",
        description="the delivery log: every message queued, sent, failed or cancelled, incl. webhooks",
        personal=(
            _field("recipient_id", _C.IDENTIFIER, _P.NOTIFICATION),
            _field("payload", _C.ENGAGEMENT, _P.NOTIFICATION, note="what the message says"),
        ),
        retention=_R.DELIVERY_LOG,
        removal="deleted 90 days after it finished; the payload goes at the volunteer's erasure",
    ),
    StoredCollection(
        owner=StoreOwner.NOTIFICATIONS,
        name="messages",
        description="the volunteers' in-app inbox",
        personal=(_VOLUNTEER_ID, _field("text", _C.ENGAGEMENT, _P.NOTIFICATION)),
        retention=_R.WITHDRAWN_VOLUNTEERS,
        removal=f"deleted at {_VOLUNTEER_ERASURE}",
    ),
    StoredCollection(
        owner=StoreOwner.NOTIFICATIONS,
        name="threads",
        description="questions volunteers ask the office, and the answers",
        personal=(_VOLUNTEER_ID, _field("messages", _C.FREE_TEXT, _P.COORDINATION, note="may be about others")),
        retention=_R.WITHDRAWN_VOLUNTEERS,
        removal=f"deleted at {_VOLUNTEER_ERASURE}",
    ),
    StoredCollection(
        owner=StoreOwner.NOTIFICATIONS,
        name="post_counts",
        description="how many questions someone asked lately (a limit against flooding)",
        personal=(_field("author_id", _C.IDENTIFIER, _P.COORDINATION),),
        retention=_R.SHORT_LIVED,
        removal="expire by a time-to-live index; deleted at the volunteer's erasure",
    ),
    StoredCollection(
        owner=StoreOwner.NOTIFICATIONS,
        name="proposals",
        description="proposals and engagements to remind volunteers of (read model)",
        personal=(_VOLUNTEER_ID, _field("starts_at", _C.AVAILABILITY, _P.NOTIFICATION)),
        retention=_R.CLOSED_NEEDS,
        removal=f"deleted at {_VOLUNTEER_ERASURE}, and with their need the closed needs' period after it ended",
    ),
    StoredCollection(
        owner=StoreOwner.NOTIFICATIONS,
        name="needs",
        description="needs as far as messages name them (read model)",
        personal=(_field("description", _C.FREE_TEXT, _P.NOTIFICATION, subjects=_HOUSEHOLD),),
        retention=_R.CLOSED_NEEDS,
        removal="replaced by the need's later events; deleted the closed needs' period after the need ended",
    ),
    StoredCollection(
        owner=StoreOwner.NOTIFICATIONS,
        name="digest_items",
        description="what the office's daily or weekly digest will list",
        personal=(_field("*", _C.ENGAGEMENT, _P.NOTIFICATION, note="volunteer ids and what happened"),),
        retention=_R.SHORT_LIVED,
        removal="deleted when a digest takes them (its delivery, in the delivery log, lists them)",
    ),
    StoredCollection(
        owner=StoreOwner.NOTIFICATIONS,
        name="mail_preferences",
        description="the office's digest settings",
    ),
    StoredCollection(owner=StoreOwner.NOTIFICATIONS, name="webhooks", description="the tenant's partner webhooks"),
    StoredCollection(
        owner=StoreOwner.NOTIFICATIONS, name="template_overrides", description="the tenant's own message texts"
    ),
    StoredCollection(owner=StoreOwner.NOTIFICATIONS, name="guidance", description="the office's guidance texts"),
    *_shared(StoreOwner.NOTIFICATIONS),
    # -- portal: sign-in sessions only ---------------------------------------------------------
    StoredCollection(
        owner=StoreOwner.PORTAL,
        name="sessions",
        description="server-side sign-in sessions (tokens sealed with a key derived from the session id)",
        personal=(
            _field(
                "user",
                _C.ACCOUNT,
                _P.SIGN_IN,
                subjects=(DataSubject.VOLUNTEER, DataSubject.OFFICE_STAFF),
                note="subject, name, roles; tokens sealed",
            ),
        ),
        retention=_R.SESSION_EXPIRY,
        removal="deleted at sign-out and when the session expires",
    ),
)


def collections_of(owner: StoreOwner) -> tuple[StoredCollection, ...]:
    return tuple(collection for collection in STORES if collection.owner is owner)
