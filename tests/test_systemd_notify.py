"""systemd's side of Type=notify: the postmaster's messages and their order
through start, reload and stop."""

from __future__ import annotations

from tests.notify_listener import NotifyListener


def test_notify_sequence_start_reload_stop(make_cluster):
    cluster = make_cluster()
    with NotifyListener() as listener:
        cluster.start(env={"NOTIFY_SOCKET": listener.path})
        ready = listener.wait_for("READY=1")
        assert any(line.startswith("STATUS=") for line in ready)
        n = len(listener.messages())
        cluster.reload()
        listener.wait_for(lambda m: "RELOADING=1" in m, start=n)
        reloading = next(i for i, m in enumerate(listener.messages()) if "RELOADING=1" in m)
        assert any(line.startswith("MONOTONIC_USEC=") for line in listener.messages()[reloading])
        listener.wait_for("READY=1", start=reloading + 1)
        assert cluster.stop("fast") == 0
        listener.wait_for("STOPPING=1")
        flat = [line for m in listener.messages() for line in m]
        order = [x for x in flat if x in ("READY=1", "RELOADING=1", "STOPPING=1")]
        assert order == ["READY=1", "RELOADING=1", "READY=1", "STOPPING=1"]
        # Every message came from the postmaster itself (NotifyAccess=main).
        assert set(listener.pids()) == {cluster.pid}
