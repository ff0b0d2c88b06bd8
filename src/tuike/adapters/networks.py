"""Hosting networks: which addresses belong to data centres, clouds and hosting companies.

The owner of every routed network comes from geoip2fast's ASN data file, which the
package ships (MaxMind GeoLite2 ASN, IPv4 and IPv6; docs/operations.md says how to update
it). An owner is a hosting network when its name matches ``TUIKE_FRAUD_DATACENTER_NETWORKS``
(a regular expression over names such as ``AMAZON-02`` or ``Hetzner Online GmbH``).

Loading the file takes about a second and ~100 MiB; it is done once, in a child process,
which hands back only the hosting networks (~36,000 ranges with the default pattern, a
few MiB). A lookup is one dict lookup for most addresses, a short bisection for the rest.
"""

from __future__ import annotations

import bisect
import logging
import pickle
import re
import subprocess
import sys
from functools import lru_cache

log = logging.getLogger("tuike.networks")

SHIPPED_DATA = "geoip2fast-asn-ipv6.dat.gz"
_V4_MAX = (1 << 32) - 1


class HostingNetworks:
    """The hosting networks of the ASN data: sorted, non-overlapping address ranges.

    A lookup first asks a table of the /16 (IPv4) or /32 (IPv6) blocks that hold any
    hosting range, so that most addresses, in no such block, cost one dict lookup; the
    others bisect the ranges of their block.
    """

    def __init__(
        self, starts: list[int], ends: list[int], owners: list[str], source: str = ""
    ) -> None:
        self._starts = starts
        self._ends = ends
        self._owners = owners
        self.source = source
        # block -> (first, last) indices of the ranges that touch it
        blocks: dict[int, list[int]] = {}
        for i, (start, end) in enumerate(zip(starts, ends, strict=True)):
            first, last = _block(start), _block(end)
            # A huge range (a /8 …) is looked at apart, after the blocks.
            spans = () if last - first > 4096 else range(first, last + 1)
            for b in spans:
                span = blocks.setdefault(b, [i, i])
                span[1] = i
        self._blocks = {b: (lo, hi + 1) for b, (lo, hi) in blocks.items()}
        self._wide = [
            i
            for i, (s_, e_) in enumerate(zip(starts, ends, strict=True))
            if _block(e_) - _block(s_) > 4096
        ]

    def __len__(self) -> int:
        return len(self._starts)

    def owner(self, number: int | None) -> str | None:
        """Return the hosting company owning an address number, or None."""
        if number is None:
            return None
        span = self._blocks.get(_block(number))
        if span is not None:
            k = bisect.bisect_right(self._starts, number, span[0], span[1]) - 1
            if k >= span[0] and number <= self._ends[k]:
                return self._owners[k]
        for k in self._wide:  # the few ranges wider than 4,096 blocks
            if self._starts[k] <= number <= self._ends[k]:
                return self._owners[k]
        return None


def _block(number: int) -> int:
    """Return the /16 (IPv4) or /32 (IPv6, numbered after IPv4's) block of an address."""
    return number >> 16 if number <= _V4_MAX else (number >> 96) + (1 << 16)


NO_NETWORKS = HostingNetworks([], [], [], "none")


def _extract(pattern: str, data_file: str) -> tuple[list[int], list[int], list[str], str]:
    """Load geoip2fast's ASN data and keep the networks whose owner matches the pattern.

    Runs in a child process: the library keeps its tables in module globals, and the
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
    """Return the hosting networks for a name pattern, loaded once per process.

    The ASN file is read by a child Python process (``python -m tuike.adapters.networks``)
    that sends back the hosting ranges, pickled; a bad pattern or file raises here.
    """
    if not pattern.strip():
        return NO_NETWORKS
    done = subprocess.run(  # noqa: S603 - our own module, by this interpreter
        [sys.executable, "-m", "tuike.adapters.networks", pattern, data_file],
        capture_output=True,
        check=False,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"cannot load the ASN data {data_file or SHIPPED_DATA}: "
            f"{done.stderr.decode(errors='replace').strip().splitlines()[-1:]}"
        )
    # Our own child's answer, not outside input.
    starts, ends, owners, source = pickle.loads(done.stdout)  # noqa: S301
    # Strings repeat per range; keep one copy of each name.
    unique: dict[str, str] = {}
    owners = [unique.setdefault(o, o) for o in owners]
    log.info("hosting networks: %d ranges from %s", len(starts), source)
    return HostingNetworks(starts, ends, owners, source)


if __name__ == "__main__":
    sys.stdout.buffer.write(pickle.dumps(_extract(sys.argv[1], sys.argv[2])))
