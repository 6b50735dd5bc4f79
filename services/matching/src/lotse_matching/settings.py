"""The matching service's settings: environment variables prefixed with ``LOTSE_``."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr

from lotse_contracts.topics import MATCHING_WORK
from lotse_runtime.connections import ServiceSettings
from lotse_runtime.http_guards import RateText
from lotse_runtime.retention import RetentionSettings
from lotse_runtime.sealed import PersonKeySettings


class TenantPolicy(BaseModel):
    """Per-municipality overrides of the proposal rounds; absent fields use the defaults."""

    proposals_per_round: int | None = Field(None, ge=1, le=50)
    answer_seconds: int | None = Field(None, ge=1)
    unstaffed_after_seconds: int | None = Field(None, ge=1)


class MatchingSettings(ServiceSettings, RetentionSettings, PersonKeySettings):
    http_host: str = Field("127.0.0.1", description="Interface the HTTP API listens on")
    http_port: int = Field(8002, description="Port of the HTTP API")
    database: str = Field("matching", description="MongoDB database owned by the matching service")
    consumer_group: str = Field("lotse-matching", description="Consumer group of the registry events")
    partner_consumer_group: str = Field("lotse-matching-partner", description="Consumer group of partner answers")
    work_consumer_group: str = Field(
        "lotse-matching-work",
        description="Consumer group of the work topic: its assignment decides which replica matches for which tenant",
    )
    work_topic: str = Field(
        MATCHING_WORK.name,
        description="The work topic (its partitions must be the catalogue's): another name only for tests",
    )
    replica_url: str | None = Field(
        None,
        description=(
            "Where the other replicas reach this one's HTTP API, to forward a request of a tenant it matches for "
            "(e.g. http://$(POD_IP):8002); default: http://<http host>:<http port>"
        ),
    )
    person_keys_consumer_group: str = Field(
        "lotse-matching-person-keys", description="Consumer group of the person keys (crypto-shredding)"
    )
    answer_link_secret: SecretStr | None = Field(
        None, description="HMAC key of the answer links (the same as notifications', which signs them)"
    )
    proposals_per_round: int = Field(3, ge=1, le=50, description="Open proposals per need at a time (k)")
    answer_seconds: int = Field(72 * 3600, ge=1, description="How long a volunteer has to answer a proposal")
    unstaffed_after_seconds: int = Field(
        7 * 24 * 3600, ge=1, description="Escalate a need that is not staffed this long after it opened"
    )
    start_lead_seconds: int = Field(
        24 * 3600, ge=0, description="Escalate a one-off need not staffed this long before it starts"
    )
    tenant_policies: dict[str, TenantPolicy] = Field(
        default_factory=dict, description='JSON, e.g. {"musterstadt": {"proposals_per_round": 5}}'
    )
    timer_interval_seconds: float = Field(5.0, gt=0, description="How often expiry and escalation are checked")
    unknown_retry_attempts: int = Field(5, ge=1, description="Tries for an event about a not yet known aggregate")
    unknown_retry_backoff_seconds: float = Field(0.5, gt=0, description="First wait between those tries")
    hours_max_minutes_per_day: int = Field(
        12 * 60, ge=60, le=24 * 60, description="What a volunteer's logged hours of one day may add up to, in minutes"
    )
    commitment_rate_limit: RateText = Field(
        "10/hour",
        description=(
            "Picks of open needs and step-backs per volunteer together, in a moving window, e.g. '10/hour': each "
            "tells the office and starts a new search, so a loop of them must not flood either; 429 beyond"
        ),
    )
    hours_log_days: int = Field(
        90, ge=1, le=366, description="How many days back a volunteer may log hours (also after an engagement ended)"
    )

    @property
    def own_url(self) -> str:
        return self.replica_url or f"http://{self.http_host}:{self.http_port}"

    def policy(self, tenant: str) -> tuple[int, int, int]:
        """(proposals per round, answer seconds, unstaffed after seconds) of one tenant."""
        own = self.tenant_policies.get(tenant, TenantPolicy())
        return (
            own.proposals_per_round or self.proposals_per_round,
            own.answer_seconds or self.answer_seconds,
            own.unstaffed_after_seconds or self.unstaffed_after_seconds,
        )
