"""The SIP OPTIONS prober against small real SIP responders on loopback (UDP, TCP, TLS).

TLS certificates are made per session with the openssl CLI: a throw-away CA, a good server
certificate for 127.0.0.1, an expired one and one for another host name. The sipp and
Kamailio runs are in tests/collectors/kamailio/test_trunks_options.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from server import store
from server.collectors.options import OptionsTrunkCollector
from server.sip.options import ProbeResult, parse_status, probe, tls_context
from server.sip.probes import ProbeLoop, ProbeSettings, Target

from ..store_rows import write

Reply = Callable[[bytes, int], bytes | None]


def sip_reply(code: int = 200, phrase: str = "OK") -> Reply:
    """An answer that echoes the request's dialog headers, as a UAS does."""

    def answer(request: bytes, count: int) -> bytes | None:
        head = request.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        keep = [h for h in head[1:] if h.split(b":", 1)[0].lower() in ECHOED]
        lines = [f"SIP/2.0 {code} {phrase}".encode(), *keep, b"Content-Length: 0"]
        return b"\r\n".join(lines) + b"\r\n\r\n"

    return answer


ECHOED = {b"via", b"from", b"to", b"call-id", b"cseq"}


class Responder:
    """A SIP server on a free loopback port that answers with ``reply`` (None: stay silent)."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.requests: list[bytes] = []
        self.port = 0

    def answer(self, data: bytes) -> bytes | None:
        self.requests.append(data)
        return self.reply(data, len(self.requests))

    async def serve_stream(self, context: ssl.SSLContext | None) -> asyncio.Server:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError, ssl.SSLError):
                request = await reader.readuntil(b"\r\n\r\n")
                answer = self.answer(request)
                if answer is not None:
                    writer.write(answer)
                    await writer.drain()
                await reader.read()  # until the prober hangs up
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
        self.port = server.sockets[0].getsockname()[1]
        return server

    async def serve_udp(self) -> asyncio.DatagramTransport:
        responder = self

        class Protocol(asyncio.DatagramProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = transport

            def datagram_received(self, data: bytes, addr: Any) -> None:
                answer = responder.answer(data)
                if answer is not None:
                    self.transport.sendto(answer, addr)  # type: ignore[attr-defined]

        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(Protocol, local_addr=("127.0.0.1", 0))
        self.port = transport.get_extra_info("sockname")[1]
        return transport


@contextlib.asynccontextmanager
async def responding(
    reply: Reply, transport: str = "UDP", context: ssl.SSLContext | None = None
) -> AsyncIterator[Responder]:
    responder = Responder(reply)
    if transport == "UDP":
        endpoint = await responder.serve_udp()
        try:
            yield responder
        finally:
            endpoint.close()
    else:
        server = await responder.serve_stream(context)
        try:
            yield responder
        finally:
            server.close()
            await server.wait_closed()


def run(coroutine: Awaitable[Any]) -> Any:
    async def main() -> Any:
        return await coroutine

    return asyncio.run(main())


def closed_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# ---------------------------------------------------------------- certificates


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _leaf(directory: Path, name: str, san: str, days: str) -> tuple[Path, Path]:
    key, csr, pem, ext = (directory / f"{name}.{s}" for s in ("key", "csr", "pem", "ext"))
    ext.write_text(
        f"subjectAltName={san}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n"
        "extendedKeyUsage=serverAuth\nauthorityKeyIdentifier=keyid\n"
    )
    _openssl(*EC_KEY, "-keyout", key.name, "-out", csr.name,
             "-subj", f"/CN={name}", cwd=directory)  # fmt: skip
    _openssl("x509", "-req", "-in", csr.name, "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", days, "-extfile", ext.name, "-out", pem.name,
             cwd=directory)  # fmt: skip
    return pem, key


EC_KEY = ("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA and three server certificates: good, expired, and for the wrong host."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI missing (make apt installs it)")
    directory = tmp_path_factory.mktemp("certs")
    _openssl(*EC_KEY, "-x509", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=rtm-test-ca", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)  # fmt: skip
    found = {"ca": directory / "ca.pem"}
    for name, san, days in (
        ("good", "IP:127.0.0.1,DNS:localhost", "2"),
        ("expired", "IP:127.0.0.1", "-1"),  # notAfter a day before it was signed
        ("wronghost", "DNS:carrier.example", "2"),
    ):
        found[name], found[f"{name}_key"] = _leaf(directory, name, san, days)
    return found


def server_context(certs: dict[str, Path], name: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certs[name], certs[f"{name}_key"])
    return context


# ---------------------------------------------------------------- probe()


@pytest.mark.parametrize("transport", ["UDP", "TCP"])
def test_reply_code_phrase_and_latency(transport: str) -> None:
    async def scenario() -> tuple[ProbeResult, Responder]:
        async with responding(sip_reply(200, "OK"), transport) as responder:
            return await probe("127.0.0.1", responder.port, transport, within=2), responder

    result, responder = run(scenario())
    assert (result.code, result.phrase, result.error) == (200, "OK", None)
    assert result.latency_ms is not None and 0 < result.latency_ms < 2000
    request = responder.requests[0]
    assert request.startswith(f"OPTIONS sip:127.0.0.1:{responder.port}".encode())
    assert f"Via: SIP/2.0/{transport} 127.0.0.1:".encode() in request


@pytest.mark.parametrize("transport", ["UDP", "TCP"])
def test_closed_port_is_refused(transport: str) -> None:
    kind = socket.SOCK_DGRAM if transport == "UDP" else socket.SOCK_STREAM
    result = run(probe("127.0.0.1", closed_port(kind), transport, within=2))
    assert (result.code, result.error) == (None, "connection refused")


@pytest.mark.parametrize("transport", ["UDP", "TCP"])
def test_silent_host_times_out(transport: str) -> None:
    async def scenario() -> tuple[ProbeResult, Responder]:
        async with responding(lambda _request, _count: None, transport) as responder:
            return await probe("127.0.0.1", responder.port, transport, within=1.2), responder

    result, responder = run(scenario())
    assert result.error == "timeout after 1.2 s"
    if transport == "UDP":  # RFC 3261 timer A: resent after T1 (0.5 s), then 2*T1
        assert len(responder.requests) == 2
        assert responder.requests[0] == responder.requests[1]


def test_udp_retransmission_gets_a_late_answer() -> None:
    def second_only(request: bytes, count: int) -> bytes | None:
        return sip_reply()(request, count) if count >= 2 else None

    async def scenario() -> ProbeResult:
        async with responding(second_only) as responder:
            return await probe("127.0.0.1", responder.port, "UDP", within=2)

    result = run(scenario())
    assert result.code == 200
    assert result.latency_ms is not None and result.latency_ms >= 500


@pytest.mark.parametrize(
    ("code", "phrase"), [(503, "Service Unavailable"), (404, "Not Here"), (408, "Request Timeout")]
)
def test_any_final_reply_is_recorded(code: int, phrase: str) -> None:
    async def scenario() -> ProbeResult:
        async with responding(sip_reply(code, phrase), "TCP") as responder:
            return await probe("127.0.0.1", responder.port, "TCP", within=2)

    assert run(scenario()).reply == f"{code} {phrase}"


def test_provisional_reply_is_skipped() -> None:
    def trying_then_ok(request: bytes, count: int) -> bytes | None:
        return (sip_reply(100, "Trying")(request, count) or b"") + (
            sip_reply(200, "OK")(request, count) or b""
        )

    async def scenario() -> ProbeResult:
        async with responding(trying_then_ok, "TCP") as responder:
            return await probe("127.0.0.1", responder.port, "TCP", within=2)

    assert run(scenario()).reply == "200 OK"


@pytest.mark.parametrize(
    "garbage",
    [
        b"HTTP/1.1 200 OK\r\n\r\n",
        b"\x00\xff" * 100 + b"\r\n\r\n",
        b"SIP/2.0 200 <script>\x07" + b"A" * 3000 + b"\r\nContent-Length: 0\r\n\r\n",
        b"SIP/2.0 200 OK\r\nContent-Length: 99999999\r\n\r\n",
    ],
)
def test_hostile_replies_never_crash(garbage: bytes) -> None:
    async def scenario() -> ProbeResult:
        async with responding(lambda _r, _c: garbage, "TCP") as responder:
            return await probe("127.0.0.1", responder.port, "TCP", within=1)

    result = run(scenario())
    assert isinstance(result, ProbeResult)
    assert len(result.phrase) <= 80 and result.phrase.isprintable()


def test_status_line_parsing() -> None:
    assert parse_status(b"SIP/2.0 486 Busy Here\r\n") == (486, "Busy Here")
    assert parse_status(b"SIP/2.0 200\r\n") == (200, "")
    assert parse_status(b"SIP/2.0 999 Nope\r\n") is None
    assert parse_status(b"OPTIONS sip:x SIP/2.0\r\n") is None
    assert parse_status(b"") is None


def test_unknown_transport_and_bad_host() -> None:
    assert run(probe("127.0.0.1", 5060, "SCTP")).error == "unsupported transport 'SCTP'"
    assert run(probe("no-such-host.invalid", 5060, "UDP", within=2)).error.startswith("DNS:")


# ---------------------------------------------------------------- TLS


def tls_probe(certs: dict[str, Path], served: str, ca_file: str | None) -> ProbeResult:
    async def scenario() -> ProbeResult:
        context = server_context(certs, served)
        async with responding(sip_reply(), "TLS", context) as responder:
            client = tls_context(ca_file)
            return await probe("127.0.0.1", responder.port, "TLS", within=2, context=client)

    result: ProbeResult = run(scenario())
    return result


def test_tls_with_trusted_certificate(certs: dict[str, Path]) -> None:
    result = tls_probe(certs, "good", str(certs["ca"]))
    assert (result.reply, result.error) == ("200 OK", None)
    assert result.latency_ms is not None and result.latency_ms > 0


def test_tls_expired_certificate(certs: dict[str, Path]) -> None:
    assert tls_probe(certs, "expired", str(certs["ca"])).error == "TLS: certificate has expired"


def test_tls_wrong_host_certificate(certs: dict[str, Path]) -> None:
    error = tls_probe(certs, "wronghost", str(certs["ca"])).error or ""
    assert error.startswith("TLS: ") and "mismatch" in error, error


def test_tls_untrusted_certificate_by_default(certs: dict[str, Path]) -> None:
    error = tls_probe(certs, "good", None).error or ""
    assert error.startswith("TLS: ") and "issuer" in error, error


# ---------------------------------------------------------------- the options: source


def make_store(path: Path, trunks: list[tuple[str, int, str]]) -> str:
    db = str(path / "rtm.db")
    store.migrate(db)
    write(
        db,
        "INSERT INTO trunks (name, host, port, transport, virtual_number, username)"
        " VALUES (?, '127.0.0.1', ?, ?, '+4930123', 'acme')",
        trunks,
    )
    return db


def test_options_source_rows(tmp_path: Path, certs: dict[str, Path]) -> None:
    async def scenario() -> list[dict[str, Any]]:
        now = [1_800_000_000.0]
        async with (
            responding(sip_reply(200, "OK")) as udp,
            responding(sip_reply(503, "Service Unavailable"), "TCP") as busy,
            responding(sip_reply(), "TLS", server_context(certs, "expired")) as expired,
        ):
            db = make_store(
                tmp_path,
                [
                    ("alive", udp.port, "UDP"),
                    ("busy", busy.port, "TCP"),
                    ("expired", expired.port, "TLS"),
                    ("closed", closed_port(socket.SOCK_STREAM), "TCP"),
                ],
            )
            settings = ProbeSettings(interval=3600, timeout=1.0, ca_file=str(certs["ca"]))
            collector = OptionsTrunkCollector(db, settings, clock=lambda: now[0])
            try:
                first = await collector.fetch()  # before any probe finished: PENDING
                assert {row["status"] for row in first.values()} == {"PENDING"}
                await collector.probes.probe_all()
                now[0] += 10
                second = dict(await collector.fetch())
                now[0] += 10
                await collector.probes.probe_all()
                third = dict(await collector.fetch())
            finally:
                await collector.close()
        return [first, second, third]

    first, second, third = run(scenario())
    assert second["alive"]["status"] == "OK" and second["alive"]["reason"] is None
    assert second["alive"]["latency_ms"] > 0
    assert (second["busy"]["status"], second["busy"]["reason"]) == (
        "FAILED",
        "503 Service Unavailable",
    )
    assert second["expired"]["reason"] == "TLS: certificate has expired"
    assert second["closed"]["reason"] == "connection refused"
    assert second["closed"]["latency_ms"] is None
    row = second["alive"]
    assert {k: row[k] for k in ("id", "name", "virtual_number", "username", "transport")} == {
        "id": "alive",
        "name": "alive",
        "virtual_number": "+4930123",
        "username": "acme",
        "transport": "UDP",
    }
    assert row["since"] == "2027-01-15T08:00:10Z"  # PENDING -> OK at the second fetch
    assert third["alive"]["since"] == row["since"]  # unchanged status keeps its since
    assert first["alive"]["since"] == "2027-01-15T08:00:00Z"


def test_probe_loop_runs_in_background_and_probes_new_targets_at_once() -> None:
    async def scenario() -> None:
        async with responding(sip_reply()) as first, responding(sip_reply()) as second:
            loop = ProbeLoop(ProbeSettings(interval=3600, timeout=1.0))
            one = Target("127.0.0.1", first.port, "UDP")
            two = Target("127.0.0.1", second.port, "UDP")
            try:
                loop.track([one])
                async with asyncio.timeout(5):
                    await loop.wait_rounds(1)
                assert (loop.result(one) or ProbeResult()).reply == "200 OK"
                loop.track([one, two])  # a new target wakes the loop long before its interval
                async with asyncio.timeout(5):
                    await loop.wait_rounds(2)
                assert (loop.result(two) or ProbeResult()).reply == "200 OK"
                assert (len(first.requests), len(second.requests)) == (2, 1)
            finally:
                await loop.close()

    run(scenario())


def test_settings_come_from_config_and_bad_values_name_the_setting(tmp_path: Path) -> None:
    from server.config import ConfigError, from_env

    def settings(env: dict[str, str]) -> ProbeSettings:
        return ProbeSettings.from_config(from_env(env).validate())

    assert settings({}) == ProbeSettings(interval=5.0, timeout=2.0)
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    env = {"RTM_OPTIONS_INTERVAL": "1.5", "RTM_OPTIONS_TIMEOUT": "0.5"}
    env["RTM_OPTIONS_CA_FILE"] = str(ca)
    assert settings(env) == ProbeSettings(1.5, 0.5, str(ca))
    for name, bad in (("RTM_OPTIONS_INTERVAL", "soon"), ("RTM_OPTIONS_TIMEOUT", "0")):
        with pytest.raises(ConfigError, match=name):
            settings({name: bad})
    with pytest.raises(ConfigError, match="RTM_OPTIONS_CA_FILE"):
        settings({"RTM_OPTIONS_CA_FILE": str(tmp_path / "missing.pem")})


def test_a_crashed_probe_loop_is_reported_once_and_restarted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # probe() never raises for network trouble; a bug is the only way to crash the loop.
    from server.sip import probes
    from server.sip.probes import ProbeLoopCrashed

    async def broken(*_args: Any, **_kwargs: Any) -> ProbeResult:
        raise RuntimeError("bug in the prober")

    async def scenario() -> None:
        async with responding(sip_reply()) as responder:
            loop = ProbeLoop(ProbeSettings(interval=3600, timeout=1.0))
            target = Target("127.0.0.1", responder.port, "UDP")
            try:
                with monkeypatch.context() as patch:
                    patch.setattr(probes, "probe", broken)
                    loop.track([target])
                    task = loop._task
                    assert task is not None
                    with contextlib.suppress(RuntimeError):
                        await task
                with pytest.raises(ProbeLoopCrashed, match="bug in the prober"):
                    loop.track([target])
                loop.track([target])  # restarted: no second report
                async with asyncio.timeout(5):
                    await loop.wait_rounds(1)
                assert (loop.result(target) or ProbeResult()).reply == "200 OK"
            finally:
                await loop.close()

    run(scenario())
