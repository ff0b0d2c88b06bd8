"""Hosting networks: which addresses belong to data centres, clouds and hosting companies.

The owner of every routed network comes from geoip2fast's ASN data file, which the
package ships (MaxMind GeoLite2 ASN, IPv4 and IPv6; docs/operations.md says how to update
it). An owner is a hosting network when its name matches ``TUIKE_FRAUD_DATACENTER_NETWORKS``
(a regular expression over names such as ``AMAZON-02`` or ``Hetzner Online GmbH``).

Loading the file takes about a second and ~100 MiB; it is done once, in a helper
process, which hands back only the hosting networks (~20,000 ranges, a few MiB). A lookup
is a bisection over them: about a microsecond.
"""

from __future__ import annotations

import bisect
import logging
import re
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from multiprocessing import get_context

log = logging.getLogger("tuike.networks")

SHIPPED_DATA = "geoip2fast-asn-ipv6.dat.gz"
_V4_MAX = (1 << 32) - 1


class HostingNetworks:
    """The hosting networks of the ASN data: sorted, non-overlapping address ranges."""

    def __init__(
        self, starts: list[int], ends: list[int], owners: list[str], source: str = ""
    ) -> None:
        self._starts = starts
        self._ends = ends
        self._owners = owners
        self.source = source

    def __len__(self) -> int:
        return len(self._starts)

    def owner(self, number: int | None) -> str | None:
        """Return the hosting company owning an address number, or None."""
        if number is None:
            return None
        k = bisect.bisect_right(self._starts, number) - 1
        if k >= 0 and number <= self._ends[k]:
            return self._owners[k]
        return None


NO_NETWORKS = HostingNetworks([], [], [], "none")


def _extract(pattern: str, data_file: str) -> tuple[list[int], list[int], list[str], str]:
    """Load geoip2fast's ASN data and keep the networks whose owner matches the pattern.

    Runs in a helper process: the library keeps its tables in module globals, and the
    whole table costs ~100 MiB that the tracker does not need.
    """
    import geoip2fast.geoip2fast as g
    from geoip2fast import GeoIP2Fast

    geo = GeoIP2Fast(geoip2fast_data_file=data_file or SHIPPED_DATA)
    if not geo.asn:
        raise ValueError(f"{data_file or SHIPPED_DATA} has no ASN data")
    wanted = re.compile(pattern, re.IGNORECASE)
    names = g.mainListNamesASN
    hosting = [bool(wanted.search(name)) for name in names]
    starts: list[int] = []
    ends: list[int] = []
    owners: list[str] = []
    for firsts, ids, lengths in zip(
        g.mainListFirstIPASN, g.mainListIDASN, g.mainListNetlengthASN, strict=True
    ):
        for first, asn, length in zip(firsts, ids, lengths, strict=True):
            if hosting[asn]:
                size = g.numIPsv4[length] if first <= _V4_MAX else g.numIPsv6[length]
                starts.append(first)
                ends.append(first + size - 1)
                owners.append(names[asn])
    return starts, ends, owners, str(geo.source_info)


@lru_cache(maxsize=4)
def hosting_networks(pattern: str, data_file: str = "") -> HostingNetworks:
    """Return the hosting networks for a name pattern, loaded once per process."""
    if not pattern.strip():
        return NO_NETWORKS
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        starts, ends, owners, source = pool.submit(_extract, pattern, data_file).result()
    # Strings repeat per range; keep one copy of each name.
    unique: dict[str, str] = {}
    owners = [unique.setdefault(o, o) for o in owners]
    log.info("hosting networks: %d ranges from %s", len(starts), source)
    return HostingNetworks(starts, ends, owners, source)
