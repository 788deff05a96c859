"""Consumers on other boxes: the TCP events endpoint with CURVE admits only known keys."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import EventReader, Instance, free_port

from streamasr.actors import messages as m
from streamasr.supervisor.client import Subscriber
from streamasr.supervisor.curve import keygen

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def test_known_key_gets_transcripts_unknown_and_plain_get_nothing(instance: Instance) -> None:
    keys = instance.base / "keys"
    clients = keys / "clients"
    _, server_secret = keygen(keys, "server")
    alice_public, alice_secret = keygen(keys, "alice")
    _, mallory_secret = keygen(keys, "mallory")  # a key the server does not know
    clients.mkdir()
    alice_public.rename(clients / alice_public.name)
    server_public = keys / "server.key"
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    instance.write_config(
        f'[events]\ntcp = "{endpoint}"\ncurve_secret = "{server_secret}"\n'
        f'curve_clients = "{clients}"\n[refine]\nfinals = "fast"\n'
    )
    alice = Subscriber(
        endpoint, ("transcript.",), curve_secret=str(alice_secret), curve_server=str(server_public)
    )
    mallory = Subscriber(
        endpoint,
        ("transcript.",),
        curve_secret=str(mallory_secret),
        curve_server=str(server_public),
    )
    plain = Subscriber(endpoint, ("transcript.",))
    try:
        up = EventReader(instance.popen("up", "--source", "sample", "--json"))
        got = alice.recv(timeout_s=60)
        assert got is not None, "the authorised consumer got no transcript"
        assert isinstance(got[1], m.Transcript)
        assert up.finish(timeout_s=60) == 0
        # the whole run is over: the others would have had every event by now
        assert mallory.recv(timeout_s=0.5) is None
        assert plain.recv(timeout_s=0.5) is None
    finally:
        for sub in (alice, mallory, plain):
            sub.close()


def test_curve_needs_both_keys_and_a_tcp_endpoint(tmp_path: Path) -> None:
    from streamasr.actors.errors import ConfigError
    from streamasr.supervisor.config import from_mapping

    with pytest.raises(
        ConfigError, match=r"events\.curve_clients: curve_secret and curve_clients go together"
    ):
        from_mapping({"events": {"tcp": "tcp://127.0.0.1:7700", "curve_secret": "x"}})
    with pytest.raises(ConfigError, match=r"events\.curve_secret: CURVE protects the tcp endpoint"):
        from_mapping({"events": {"curve_secret": "x", "curve_clients": "y"}})
