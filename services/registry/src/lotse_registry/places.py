"""Places: a tenant's postcode table (postcode → centroid and district) and the optional address
search through an outside geocoder.

Matching measures distances between points, so a volunteer who gives only a postcode gets the
postcode's centroid from the table (``service``), and an unknown postcode is refused rather than
stored without a place.

The geocoder (``LOTSE_GEOCODER_URL``, a Photon- or Nominatim-compatible search URL; off by
default) is a system outside the platform that answers with what it likes: requests go only to
public addresses, checked when the settings load and again at every connection
(``lotse_runtime.destinations``), with one deadline and a bounded answer.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Annotated, Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lotse_contracts.events.values import GeoPoint, Postcode
from lotse_runtime.destinations import DestinationNotAllowed, Env, Resolver, guarded_transport, url_problem

District = Annotated[str, Field(min_length=1, max_length=80, description="District (Stadtteil) of the postcode.")]


class PostcodePlace(BaseModel):
    """One row of a tenant's postcode table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    postcode: Postcode
    lat: Annotated[float, GeoPoint.model_fields["lat"]]
    lon: Annotated[float, GeoPoint.model_fields["lon"]]
    district: District

    @property
    def point(self) -> GeoPoint:
        return GeoPoint(lat=self.lat, lon=self.lon)

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> PostcodePlace:
        return cls.model_validate({name: document[name] for name in cls.model_fields})


class Candidate(BaseModel):
    """A place the geocoder found for an address."""

    model_config = ConfigDict(frozen=True)

    label: str = Field(description="How the geocoder names the place.")
    point: GeoPoint
    postcode: str | None = None
    district: str | None = None


class GeocoderUnavailable(Exception):
    """The geocoder did not answer usefully (refused destination, timeout, error, bad answer)."""


MAX_CANDIDATES = 5
MAX_LABEL = 200
USER_AGENT = "lotse-registry (address search of a municipality's volunteer coordination)"


class Geocoder:
    """Address search against one Photon- or Nominatim-compatible URL (told apart by the answer:
    Photon answers GeoJSON, Nominatim a list). The URL may carry fixed parameters (Nominatim's
    ``format=jsonv2``); the registry adds ``q`` and ``limit``."""

    def __init__(
        self, url: str, env: Env, resolver: Resolver, *, timeout: float = 5.0, max_bytes: int = 256 * 1024
    ) -> None:
        self.url = url
        self._env = env
        self._deadline = timeout
        self._max_bytes = max_bytes
        self._client = httpx.AsyncClient(
            timeout=timeout,
            follow_redirects=False,  # a redirect could point inside
            trust_env=False,
            transport=guarded_transport(env, resolver),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def search(self, query: str) -> list[Candidate]:
        if url_problem(self.url, self._env) is not None:
            raise GeocoderUnavailable("destination not allowed")
        try:
            # One deadline for the whole exchange: httpx's timeout is per read, and a geocoder that
            # trickles its answer would otherwise hold the request for ever.
            async with asyncio.timeout(self._deadline):
                async with self._client.stream(
                    "GET", self.url, params={"q": query, "limit": MAX_CANDIDATES}
                ) as response:
                    if response.status_code != 200:
                        raise GeocoderUnavailable(f"http {response.status_code}")
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > self._max_bytes:
                            raise GeocoderUnavailable("answer too large")
        except DestinationNotAllowed as error:
            raise GeocoderUnavailable("destination not allowed") from error
        except (httpx.HTTPError, TimeoutError) as error:
            raise GeocoderUnavailable(type(error).__name__) from error
        try:
            return candidates(json.loads(bytes(body)))
        except (ValueError, ValidationError, KeyError, TypeError) as error:
            raise GeocoderUnavailable("not a Photon or Nominatim answer") from error


def candidates(answer: Any) -> list[Candidate]:
    """The places of a Photon (GeoJSON FeatureCollection) or Nominatim (list) answer."""
    if isinstance(answer, dict):
        return [_photon(feature) for feature in answer["features"][:MAX_CANDIDATES]]
    if isinstance(answer, list):
        return [_nominatim(entry) for entry in answer[:MAX_CANDIDATES]]
    raise ValueError("neither a feature collection nor a list")


def _photon(feature: Mapping[str, Any]) -> Candidate:
    lon, lat = feature["geometry"]["coordinates"][:2]
    properties: Mapping[str, Any] = feature.get("properties") or {}
    street = " ".join(str(properties[key]) for key in ("street", "housenumber") if properties.get(key))
    town = " ".join(str(properties[key]) for key in ("postcode", "city") if properties.get(key))
    parts = [str(properties["name"])] if properties.get("name") else []
    parts += [part for part in (street, town) if part and part not in parts]
    return Candidate(
        label=(", ".join(parts) or f"{lat}, {lon}")[:MAX_LABEL],
        point=GeoPoint(lat=float(lat), lon=float(lon)),
        postcode=_text(properties.get("postcode")),
        district=_text(properties.get("district") or properties.get("locality")),
    )


def _nominatim(entry: Mapping[str, Any]) -> Candidate:
    address: Mapping[str, Any] = entry.get("address") or {}
    return Candidate(
        label=str(entry.get("display_name") or entry["name"])[:MAX_LABEL],
        point=GeoPoint(lat=float(entry["lat"]), lon=float(entry["lon"])),
        postcode=_text(address.get("postcode")),
        district=_text(address.get("suburb") or address.get("city_district")),
    )


def _text(value: Any) -> str | None:
    return str(value)[:80] if value else None
