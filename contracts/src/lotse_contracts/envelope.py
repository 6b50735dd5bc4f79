"""The CloudEvents 1.0 envelope every Lotse event travels in.

Events use the structured JSON mode: the whole envelope is the Kafka record
value, with content type `application/cloudevents+json`. Unknown attributes
are refused (CloudEvents would allow unknown extensions): in v1 a typo such as
`tenantid` must fail loudly rather than be carried along silently. A new
extension attribute is therefore an additive contract change like any other.
"""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from lotse_contracts.events.values import TENANT_PATTERN

CONTENT_TYPE = "application/cloudevents+json"
SCHEMA_BASE_URL = "https://schemas.lotse.de/events/"
TYPE_PATTERN = r"^de\.lotse\.[a-z]+(\.[a-z_]+)+\.v[1-9][0-9]*$"
PARTNER_SOURCE_PREFIX = "/partners/"

DataT = TypeVar("DataT")


def schema_url(event_type: str) -> str:
    """The `dataschema` of an event type: where its JSON Schema is published."""
    return f"{SCHEMA_BASE_URL}{event_type}.json"


def message_key(tenant: str, aggregate_id: object) -> bytes:
    """The Kafka key: tenant plus aggregate id, so one aggregate's events stay in order."""
    return f"{tenant}:{aggregate_id}".encode()


class Envelope(BaseModel, Generic[DataT]):
    """A CloudEvents 1.0 event with the Lotse extension attributes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    specversion: Literal["1.0"] = Field(description="CloudEvents version.", examples=["1.0"])
    id: UUID = Field(
        description="Unique event id; consumers deduplicate on it.",
        examples=["1b2c3d4e-5f60-4718-9a2b-3c4d5e6f7a8b"],
    )
    source: str = Field(
        pattern=r"^/[A-Za-z0-9._~/-]{1,255}$",
        description=(
            "URI-reference of the producer: `/lotse/<service>` for Lotse services, "
            "`/partners/<tenant>/<system>` for partner systems."
        ),
        examples=["/lotse/registry"],
    )
    type: str = Field(
        pattern=TYPE_PATTERN,
        description="Versioned event type; selects the schema of `data`.",
        examples=["de.lotse.registry.need.opened.v1"],
    )
    subject: str = Field(
        min_length=1,
        max_length=128,
        description="Id of the aggregate the event is about (see each event type).",
        examples=["5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d"],
    )
    time: AwareDatetime = Field(
        description="When the fact happened, with time zone.", examples=["2026-11-25T10:00:00+01:00"]
    )
    datacontenttype: Literal["application/json"] = Field(
        description="Media type of `data`.", examples=["application/json"]
    )
    dataschema: str = Field(
        description=f"URI of the JSON Schema of this event type: `{SCHEMA_BASE_URL}<type>.json`.",
        examples=["https://schemas.lotse.de/events/de.lotse.registry.need.opened.v1.json"],
    )
    tenant: str = Field(
        pattern=TENANT_PATTERN,
        description="Extension attribute: the municipality the event belongs to.",
        examples=["musterstadt"],
    )
    correlationid: str = Field(
        pattern=r"^[A-Za-z0-9._:-]{1,128}$",
        description="Extension attribute: id shared by all events of one business flow.",
        examples=["1b2c3d4e-5f60-4718-9a2b-3c4d5e6f7a8b"],
    )
    causationid: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9._:-]{1,128}$",
        description="Extension attribute: id of the event that caused this one; absent at the start of a flow.",
        examples=["0f1e2d3c-4b5a-4697-8877-665544332211"],
    )
    version: int = Field(
        ge=1,
        description=(
            "Extension attribute: version of the aggregate after this event, for ordering; "
            "consumers ignore events older than what they have. For partner commands the "
            "partner's own sequence number per subject."
        ),
        examples=[1],
    )
    traceparent: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
        description=(
            "CloudEvents distributed-tracing extension: W3C trace context of the operation that "
            "produced the event, so a trace follows the event across Kafka hops."
        ),
        examples=["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"],
    )
    tracestate: str | None = Field(
        default=None,
        max_length=512,
        description="CloudEvents distributed-tracing extension: W3C tracestate, vendor-specific.",
        examples=["congo=t61rcWkgMzE"],
    )
    data: DataT = Field(description="The event payload; its schema depends on `type`.")

    @field_validator("dataschema")
    @classmethod
    def _dataschema_matches_type(cls, value: str, info: ValidationInfo) -> str:
        event_type = info.data.get("type")
        if event_type is not None and value != schema_url(event_type):
            raise ValueError(f"must be {schema_url(event_type)!r} for type {event_type!r}")
        return value

    @field_validator("tenant")
    @classmethod
    def _partner_source_names_tenant(cls, value: str, info: ValidationInfo) -> str:
        # A partner may only speak for its own municipality.
        source = info.data.get("source") or ""
        if source.startswith(PARTNER_SOURCE_PREFIX):
            source_tenant = source.removeprefix(PARTNER_SOURCE_PREFIX).split("/", 1)[0]
            if source_tenant != value:
                raise ValueError(f"tenant {value!r} differs from the tenant in source {source!r}")
        return value

    @model_validator(mode="after")
    def _data_fits_type_and_subject(self) -> Envelope[DataT]:
        declared = getattr(type(self.data), "event_type", None)
        if declared is not None and declared != self.type:
            raise ValueError(f"type {self.type!r} does not fit data of {declared!r}")
        subject_field = getattr(type(self.data), "subject_field", None)
        if subject_field is not None and str(getattr(self.data, subject_field)) != self.subject:
            raise ValueError(f"subject {self.subject!r} must equal data.{subject_field}")
        return self

    @property
    def key(self) -> bytes:
        """The Kafka message key of this event."""
        return message_key(self.tenant, self.subject)


def envelope_example(data: Any, event_type: str) -> dict[str, Any]:
    """A whole example event around example data, for docs and tests."""
    subject_field = getattr(type(data), "subject_field", None)
    subject = str(getattr(data, subject_field)) if subject_field else "musterstadt"
    source = (
        "/partners/musterstadt/case-management" if ".partner." in event_type else "/lotse/" + event_type.split(".")[2]
    )
    return {
        "specversion": "1.0",
        "id": "1b2c3d4e-5f60-4718-9a2b-3c4d5e6f7a8b",
        "source": source,
        "type": event_type,
        "subject": subject,
        "time": "2026-11-25T10:00:00+01:00",
        "datacontenttype": "application/json",
        "dataschema": schema_url(event_type),
        "tenant": "musterstadt",
        "correlationid": "1b2c3d4e-5f60-4718-9a2b-3c4d5e6f7a8b",
        "version": 1,
        "data": data.model_dump(mode="json", exclude_none=True),
    }
