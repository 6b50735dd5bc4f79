"""Entry point of matching's containers in docker compose, so that several replicas can run
(`docker compose up --scale matching=2`, issue 19).

A replica tells the others where it answers HTTP (LOTSE_REPLICA_URL), and they forward requests
of the tenants it matches for there. Compose gives every replica the same environment, and
`matching:8002` reaches any of them, so this sets, unless the environment sets them already:

- LOTSE_REPLICA_URL: `http://<this container's address in the compose network>:<LOTSE_HTTP_PORT>`;
- FORWARDED_ALLOW_IPS (uvicorn's): the compose network without its gateway, so that a replica
  believes the caller's address another one forwards in X-Forwarded-For (its per-client rate limits
  count the caller, not the forwarding replica). The gateway stays untrusted: requests through the
  published port come from it on this machine, and their senders must not choose their address.

Then it replaces itself with the command in its arguments (`python -m lotse_matching`).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
import sys

ROUTES = "/proc/net/route"
RTF_UP, RTF_GATEWAY = 0x1, 0x2


def _address(field: str) -> ipaddress.IPv4Address:
    # The kernel prints each address as the host-order integer of its network-order bytes.
    return ipaddress.IPv4Address(struct.pack("=L", int(field, 16)))


def networks(routes: str) -> list[tuple[ipaddress.IPv4Network, ipaddress.IPv4Address | None]]:
    """The directly connected IPv4 networks of /proc/net/route, each with its interface's gateway."""
    connected: list[tuple[str, ipaddress.IPv4Network]] = []
    gateways: dict[str, ipaddress.IPv4Address] = {}
    for line in routes.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        interface, destination, gateway, flags, mask = fields[0], fields[1], fields[2], int(fields[3], 16), fields[7]
        if not flags & RTF_UP:
            continue
        if flags & RTF_GATEWAY:
            if int(destination, 16) == 0:
                gateways.setdefault(interface, _address(gateway))
            continue
        network = ipaddress.IPv4Network(f"{_address(destination)}/{_address(mask)}")
        if network.prefixlen:
            connected.append((interface, network))
    return [(network, gateways.get(interface)) for interface, network in connected]


def trusted_peers(network: ipaddress.IPv4Network, gateway: ipaddress.IPv4Address | None) -> str:
    """The network as uvicorn's comma-separated CIDRs, without the gateway."""
    if gateway is None or gateway not in network:
        return str(network)
    return ",".join(str(part) for part in sorted(network.address_exclude(ipaddress.IPv4Network(gateway))))


def own_address() -> ipaddress.IPv4Address:
    # Docker writes the container's address for its hostname into /etc/hosts.
    try:
        return ipaddress.IPv4Address(socket.gethostbyname(socket.gethostname()))
    except OSError as error:
        raise SystemExit(f"matching-entrypoint: this container's address is unknown ({error})") from error


def environment(environ: dict[str, str], routes: str, address: ipaddress.IPv4Address) -> dict[str, str]:
    """The variables to add to `environ` (those it sets already are kept as they are)."""
    added: dict[str, str] = {}
    network = next(((net, gateway) for net, gateway in networks(routes) if address in net), None)
    if network is None or address.is_loopback:
        raise SystemExit(f"matching-entrypoint: {address} is not this container's address in a compose network")
    if "LOTSE_REPLICA_URL" not in environ:
        added["LOTSE_REPLICA_URL"] = f"http://{address}:{environ.get('LOTSE_HTTP_PORT', '8002')}"
    if "FORWARDED_ALLOW_IPS" not in environ:
        added["FORWARDED_ALLOW_IPS"] = trusted_peers(*network)
    return added


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit("usage: matching-entrypoint.py <command> [arguments...]")
    if not {"LOTSE_REPLICA_URL", "FORWARDED_ALLOW_IPS"} <= set(os.environ):
        with open(ROUTES, encoding="ascii") as file:
            routes = file.read()
        os.environ.update(environment(dict(os.environ), routes, own_address()))
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])
