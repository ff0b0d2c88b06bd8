"""The SSRF guard of outgoing requests, against real servers on loopback (no database)."""

from __future__ import annotations

import ipaddress
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from factories.receiver import receiver
from tuike.adapters import outbound as out

LOOPBACK = out.parse_networks("127.0.0.0/8")
OPEN = out.Policy(allow_networks=LOOPBACK)


def resolving(*addresses: str):
    def resolver(host: str, port: int) -> list[str]:
        return list(addresses)

    return resolver


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.1.2.3",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "0.0.0.0",  # noqa: S104 - an address to refuse, not one to bind
        "100.64.0.1",  # shared address space (carrier NAT)
        "198.18.0.1",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:10.0.0.1",  # IPv4-mapped
        "::ffff:169.254.169.254",
        "::127.0.0.1",  # IPv4-compatible
        "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    ],
)
def test_internal_addresses_are_refused(address):
    answer = out.fetch("http://pb.example/x", out.Policy(), resolving(address))
    assert answer.refused and answer.status_code is None
    assert answer.error.startswith("refused: pb.example resolves to")


def test_one_internal_address_among_public_ones_is_enough_to_refuse():
    with pytest.raises(out.Refused, match=r"10\.0\.0\.1"):
        out.check_target("http://pb.example/", out.Policy(), resolving("93.184.216.34", "10.0.0.1"))


def test_public_addresses_pass_on_ports_80_and_443_only():
    public = resolving("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946")
    host, port, ips = out.check_target("https://pb.example/x?a=1", out.Policy(), public)
    assert (host, port) == ("pb.example", 443)
    assert ips == [ipaddress.ip_address("93.184.216.34"), ips[1]]
    assert out.check_target("http://pb.example/", out.Policy(), public)[1] == 80
    with pytest.raises(out.Refused, match="port 8080 is not allowed"):
        out.check_target("http://pb.example:8080/", out.Policy(), public)


def test_any_port_inside_the_allowed_networks():
    assert out.check_target("http://pb.example:8080/", OPEN, resolving("127.0.0.1"))[1] == 8080
    with pytest.raises(out.Refused, match="port 8080"):
        out.check_target("http://pb.example:8080/", OPEN, resolving("127.0.0.1", "93.184.216.34"))


def test_literal_addresses_and_names_of_loopback_are_refused():
    for url in (
        "http://127.0.0.1/",
        "http://[::1]/",
        "http://localhost/",
        "http://2130706433/",  # 127.0.0.1 as one number
        "http://0x7f.1/",
        "http://169.254.169.254/latest/meta-data/",
    ):
        answer = out.fetch(url, out.Policy())
        assert answer.refused, (url, answer)


def test_only_http_and_https_without_credentials():
    for url in ("ftp://pb.example/", "file:///etc/passwd", "https://u:p@pb.example/", "http:///x"):
        with pytest.raises(out.Refused):
            out.check_target(url, out.Policy(), resolving("93.184.216.34"))


def test_international_names_are_resolved_and_sent_in_ascii():
    asked = []
    with receiver() as r:

        def resolver(host: str, port: int) -> list[str]:
            asked.append(host)
            return ["127.0.0.1"]

        answer = out.fetch(f"http://bücher.example:{r.port}/pb", OPEN, resolver)
    assert answer.ok, answer
    assert asked == ["xn--bcher-kva.example"]
    assert r.requests[0].headers["Host"] == f"xn--bcher-kva.example:{r.port}"
    bad = out.fetch("http://a..b/", out.Policy(), resolving("93.184.216.34"))
    assert bad.refused and "not a valid host name" in bad.error


def test_bad_settings_networks_are_refused():
    with pytest.raises(ValueError):
        out.parse_networks("127.0.0.0/8, not-a-network")
    assert out.parse_networks(" 10.0.0.0/8 ,::1/128,") == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    )


def test_an_allowed_network_is_reached_with_the_original_host_header():
    calls = []

    def rebinding(host: str, port: int) -> list[str]:
        # A second answer would point elsewhere: the guard must connect to the first.
        calls.append(host)
        return ["127.0.0.1"] if len(calls) == 1 else ["10.9.9.9"]

    with receiver() as r:
        answer = out.fetch(f"http://pb.test:{r.port}/pb?a=%20b&c=d%26e", OPEN, rebinding)
    assert answer.ok and answer.body == b"OK", answer
    assert calls == ["pb.test"]
    (got,) = r.requests
    assert got.path == "/pb?a=%20b&c=d%26e"
    assert got.headers["Host"] == f"pb.test:{r.port}"
    assert got.headers["User-Agent"].startswith("tuike-postback/")


def test_redirects_are_not_followed():
    with receiver() as r:
        r.status, r.headers = 302, {"Location": r.url("/elsewhere")}
        answer = out.fetch(r.url("/pb"), OPEN)
    assert answer.status_code == 302 and not answer.ok
    assert [q.path for q in r.requests] == ["/pb"]


def test_at_most_max_bytes_of_the_answer_are_read():
    with receiver() as r:
        r.body = b"x" * 200_000
        answer = out.fetch(r.url(), OPEN)
    assert answer.ok and len(answer.body) == 2048
    assert len(answer.snippet()) == 500


def test_a_silent_server_times_out():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        start = time.monotonic()
        answer = out.fetch(
            f"http://127.0.0.1:{port}/", out.Policy(allow_networks=LOOPBACK, timeout=0.5)
        )
    assert answer.status_code is None and not answer.refused
    assert answer.error == "timed out"
    assert time.monotonic() - start < 3


def test_connection_refused_is_an_error_not_a_refusal():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    answer = out.fetch(f"http://127.0.0.1:{port}/", OPEN)
    assert not answer.refused and answer.status_code is None
    assert "cannot connect" in answer.error


@pytest.fixture
def tls(tmp_path: Path):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=pb.test",
            "-addext",
            "subjectAltName=DNS:pb.test",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    return server, out.Policy(allow_networks=LOOPBACK, verify=client)


def test_https_connects_to_the_checked_address_and_verifies_the_name(tls):
    server, policy = tls
    with receiver(server) as r:
        ok = out.fetch(f"https://pb.test:{r.port}/pb", policy, resolving("127.0.0.1"))
        wrong_name = out.fetch(f"https://other.test:{r.port}/pb", policy, resolving("127.0.0.1"))
        by_address = out.fetch(f"https://127.0.0.1:{r.port}/pb", policy)
    assert ok.ok and ok.body == b"OK", ok
    assert r.requests[0].headers["Host"] == f"pb.test:{r.port}"
    for answer in (wrong_name, by_address):
        assert answer.status_code is None and "certificate" in answer.error.lower(), answer
    assert len(r.requests) == 1
