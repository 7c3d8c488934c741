"""The load run, shortened (benchmarks/load.py is the long one): a signed fleet with its own
spools sending to `privplate serve --workers 2` on a PostgreSQL of the test's own, with the purge
leader, investigators, a live alert stream and two webhook endpoints; during it one worker is
killed with SIGKILL and PostgreSQL is restarted, while two devices in another host (a network
namespace, tests/hosts.py) have their link cut. Afterwards nothing is lost and nothing is stored
twice: reads per camera, one alert per hotlisted read, each alert at each endpoint, and the audit
log verifies."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests import hosts
from tests.conftest import ON_POSTGRES
from tests.fleet import FleetShape
from tests.loadbed import Investigators, LoadBed, LoadConfig
from tests.pg_cluster import postgres_bin

pytestmark = [
    pytest.mark.skipif(not ON_POSTGRES, reason="several workers are for PostgreSQL"),
    pytest.mark.skipif(postgres_bin() is None, reason="no PostgreSQL server binaries to run one"),
]


def test_load_with_a_worker_killed_postgres_restarted_and_an_edge_cut_off() -> None:
    hosts.require("the load test's edge link cut")
    config = LoadConfig(
        workers=2,
        shape=FleetShape(devices=12, cameras_per_device=4, hit_share=0.05, idle_poll=0.5),
        hotlist_entries=50,
        investigators=2,
        query_every=1.0,
        purge_interval=10,
        remote_devices=2,
    )
    bed = LoadBed(config)
    try:
        bed.setup()
        server = bed.start_server()
        investigators = Investigators(server.url, bed.investigator_keys, bed.hot, 1.0)
        investigators.start()
        fleet = bed.start_fleet(rate=150)
        with hosts.peer("edge") as peer:
            remote = bed.start_remote(peer, 25)
            try:
                time.sleep(2)
                peer.cut()  # for the whole of both faults below
                time.sleep(2)
                victim = server.worker_pids()[0]
                os.kill(victim, signal.SIGKILL)
                time.sleep(5)
                bed.cluster.restart("immediate")  # like a crash: connections cut, WAL recovery
                time.sleep(4)
                spooled = remote.depth()
                peer.restore()
                time.sleep(2)
                fleet.stop_producing()
                investigators.stop()
                assert fleet.drain(120), f"spools still hold {fleet.depth()} reads"
                stopped = remote.stop()
            finally:
                remote.kill()
        assert spooled > 100, "the cut-off devices spooled what they could not send"
        assert stopped["drained"], stopped
        # uvicorn's supervisor replaced the killed worker.
        assert victim not in server.worker_pids()
        assert len(server.worker_pids()) == 2
        figures = bed.verify(fleet, remote=remote).values
        assert sum(remote.produced().values()) > spooled
        assert figures["reads_sent"] > 1000
        assert figures["hit_reads"] > 0
        for name in (
            "reads_lost",
            "reads_extra",
            "reads_doubled",
            "cameras_off",
            "hits_without_alert",
            "alerts_doubled",
            "webhook_missing",
            "webhook_doubled",
        ):
            assert figures[name] == 0, (name, figures)
        assert figures["alerts"] == figures["hit_reads"]
        assert figures["audit_verifies"], figures
        assert investigators.statuses[200] > 0
        # A query never failed with a server error that was not a fault's moment: the
        # answers are 200 or connection errors while PostgreSQL restarted, never a 4xx.
        assert not {s for s in investigators.statuses if 400 <= s < 500}, investigators.statuses
    finally:
        bed.close()
