"""Where webhooks may go: the rules on URLs and addresses, without a network."""

from __future__ import annotations

import ipaddress

import pytest

from lotse_runtime.destinations import (
    DestinationNotAllowed,
    IPAddress,
    Resolver,
    checked_addresses,
    is_public,
    registration_problem,
    system_resolver,
    url_problem,
)

INTERNAL_ADDRESSES = [
    "127.0.0.1",
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.100.100.200",  # Alibaba's metadata (shared address space)
    "0.0.0.0",
    "224.0.0.1",  # multicast
    "240.0.0.1",  # reserved
    "255.255.255.255",
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "fd00:ec2::254",  # AWS metadata over IPv6
    "ff02::1",
    "fec0::1",  # site-local
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:169.254.169.254",
    "::127.0.0.1",  # IPv4-compatible
    "::10.0.0.1",
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
]


@pytest.mark.parametrize("address", INTERNAL_ADDRESSES)
def test_internal_addresses_in_every_form_are_not_public(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"])
def test_public_addresses_are_public(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/",
        "http://localhost:27017/",
        "https://localhost:27017/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "https://[::ffff:7f00:1]/",
        "https://10.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://metadata.google.internal/computeMetadata/v1/",
        "https://mongo/",  # a single-label name: a host of the internal network
        "https://api.localhost/",
        "https://printer.local/",
        "http://partner.example/hook",  # plain http to the internet
        "ftp://partner.example/",
        "https://user:pass@partner.example/",
    ],
)
def test_in_production_only_https_to_public_hosts_passes(url: str) -> None:
    assert url_problem(url, "production") is not None


def test_in_production_an_https_name_or_public_address_passes_before_resolving() -> None:
    assert url_problem("https://partner.example/hook", "production") is None
    assert url_problem("https://93.184.216.34:8443/hook", "production") is None


def test_in_development_plain_http_goes_to_loopback_only() -> None:
    assert url_problem("http://127.0.0.1:8080/hook", "development") is None
    assert url_problem("http://localhost:8080/hook", "development") is None
    assert url_problem("http://[::1]:8080/hook", "development") is None
    for url in ("http://169.254.169.254/", "http://10.0.0.1/", "http://partner.example/", "https://10.0.0.1/"):
        assert url_problem(url, "development") is not None, url


def _resolving_to(*addresses: str) -> Resolver:
    async def resolve(host: str, port: int) -> list[IPAddress]:
        return [ipaddress.ip_address(address) for address in addresses]

    return resolve


async def _not_resolving(host: str, port: int) -> list[IPAddress]:
    raise OSError("Name or service not known")


async def test_a_name_is_refused_if_any_of_its_addresses_is_internal() -> None:
    public = _resolving_to("93.184.216.34")
    assert await checked_addresses("partner.example", 443, "production", public) == [
        ipaddress.ip_address("93.184.216.34")
    ]
    for resolver in (_resolving_to("10.0.0.1"), _resolving_to("93.184.216.34", "127.0.0.1")):
        with pytest.raises(DestinationNotAllowed):
            await checked_addresses("partner.example", 443, "production", resolver)
    with pytest.raises(OSError, match="not known"):  # at delivery: retried as a failed connection
        await checked_addresses("partner.example", 443, "production", _not_resolving)


async def test_registration_refuses_a_name_resolving_inside_with_the_same_words_as_one_not_resolving() -> None:
    url = "https://partner.example/hook"
    inside = await registration_problem(url, "production", _resolving_to("10.0.0.1"), timeout=1)
    unknown = await registration_problem(url, "production", _not_resolving, timeout=1)
    assert inside is not None and inside == unknown  # no oracle on which internal names exist
    assert await registration_problem(url, "production", _resolving_to("93.184.216.34"), timeout=1) is None


async def test_a_name_idna_cannot_encode_is_refused_not_a_crash() -> None:
    url = f"https://{'a' * 70}.example/hook"
    assert await registration_problem(url, "production", system_resolver, timeout=5) is not None


async def test_a_punycode_name_that_idna_2008_cannot_decode_is_checked_not_a_crash() -> None:
    # The URL parser (pydantic) accepts xn--ls8h (an emoji label); decoding it back raised
    # InvalidCodepoint out of the check, a 500 at registration.
    url = "https://xn--ls8h.example/hook"
    assert url_problem(url, "production") is None
    assert await registration_problem(url, "production", _resolving_to("10.0.0.1"), timeout=1) is not None
    assert await registration_problem(url, "production", _resolving_to("93.184.216.34"), timeout=1) is None
