"""The background writer — mirrors src/backend/postmaster/bgwriter.c and BgBufferSync
(src/backend/storage/buffer/bufmgr.c, PostgreSQL 15).

Every bgwriter_delay it writes dirty buffers that the clock sweep is about to
reach, so that backends looking for a victim find it clean and need not write
it themselves. It never touches a buffer someone uses: only buffers with
refcount 0 and usage count 0 — the sweep's next victims — are written
(sync_one_buffer with skip_recently_used).

How far ahead it scans (bg_buffer_sync)
    From the freelist it learns where the clock hand is, how many complete
    passes it has made and how many buffers were allocated since the last round
    (StrategySyncStart). It estimates the coming allocations from the recent
    rate — a moving average over SMOOTHING_SAMPLES (16) rounds that follows any
    increase at once — times bgwriter_lru_multiplier, and the density of
    reusable buffers (buffers scanned per allocation, also smoothed), and keeps
    a minimum pace that covers the whole pool every SCAN_WHOLE_POOL_MILLISECONDS
    (120 s). It then scans from where it stopped last time (or from the hand, if
    the hand has overtaken it) until it has found enough reusable buffers, has
    lapped the hand, or has written bgwriter_lru_maxpages buffers in this round
    (counted in maxwritten_clean). Writes are hinted to the kernel every
    bgwriter_flush_after blocks.

Hibernation
    A round that finds the hand lapped and no allocation since the last one may
    hibernate; after two such rounds in a row (and a full bgwriter_delay with no
    wake-up) it asks the freelist to wake it at the next allocation
    (StrategyNotifyBgWriter: the first backend to take a buffer sets its latch)
    and sleeps HIBERNATE_FACTOR (50) times bgwriter_delay.

Signals as every auxiliary process: SIGTERM exit, SIGHUP reload, SIGQUIT quick
exit, SIGURG the latch. pg_stat_bgwriter's buffers_clean, maxwritten_clean and
buffers_alloc are this process's (procs/checkpointer.py keeps the counters).

Where we differ: no XLOG_RUNNING_XACTS records (no hot standby). A write error
is reported and the round abandoned; the buffer stays dirty for a later try.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from access.xlogcheckpoint import BUF_REUSABLE, BUF_WRITTEN, WritebackContext, sync_one_buffer
from procs import checkpointer, child, interrupts
from shmem.lwlock import lwlock_release_all
from storage import bufmgr, smgr

SMOOTHING_SAMPLES = 16
SCAN_WHOLE_POOL_MILLISECONDS = 120000.0
HIBERNATE_FACTOR = 50


@dataclass
class BgBufferSyncState:
    """BgBufferSync's statics: where the last scan stopped and the moving averages."""

    saved_info_valid: bool = False
    prev_strategy_buf_id: int = 0
    prev_strategy_passes: int = 0
    next_to_clean: int = 0
    next_passes: int = 0
    smoothed_alloc: float = 0.0
    smoothed_density: float = 10.0


def bg_buffer_sync(st: BgBufferSyncState, settings, wb_context: WritebackContext | None) -> bool:
    """BgBufferSync: one round of the LRU scan; True if it is fine to hibernate."""
    p = bufmgr.pool()
    nbuffers = p.nbuffers
    strategy_buf_id, strategy_passes, recent_alloc = p.strategy.sync_start()
    checkpointer.pgstat_count_bgwriter("buffers_alloc", recent_alloc)
    lru_maxpages = int(settings.get("bgwriter_lru_maxpages"))
    if lru_maxpages <= 0:
        st.saved_info_valid = False
        return True
    # How far has the clock hand moved since last time, and how far ahead are we?
    if st.saved_info_valid:
        strategy_delta = (strategy_buf_id - st.prev_strategy_buf_id
                          + (strategy_passes - st.prev_strategy_passes) * nbuffers)
        if st.next_passes > strategy_passes:
            bufs_to_lap = strategy_buf_id - st.next_to_clean  # a pass ahead of the hand
        elif st.next_passes == strategy_passes and st.next_to_clean >= strategy_buf_id:
            bufs_to_lap = nbuffers - (st.next_to_clean - strategy_buf_id)  # same pass, ahead
        else:
            # Behind the hand: start again from it.
            st.next_to_clean = strategy_buf_id
            st.next_passes = strategy_passes
            bufs_to_lap = nbuffers
    else:
        strategy_delta = 0
        st.next_to_clean = strategy_buf_id
        st.next_passes = strategy_passes
        bufs_to_lap = nbuffers
    st.prev_strategy_buf_id = strategy_buf_id
    st.prev_strategy_passes = strategy_passes
    st.saved_info_valid = True
    # Buffers scanned per allocation (1 / density of reusable buffers), smoothed.
    if strategy_delta > 0 and recent_alloc > 0:
        scans_per_alloc = strategy_delta / recent_alloc
        st.smoothed_density += (scans_per_alloc - st.smoothed_density) / SMOOTHING_SAMPLES
    bufs_ahead = nbuffers - bufs_to_lap
    reusable_buffers_est = int(bufs_ahead / st.smoothed_density)
    # Allocations: fast attack, slow decline.
    if st.smoothed_alloc <= recent_alloc:
        st.smoothed_alloc = float(recent_alloc)
    else:
        st.smoothed_alloc += (recent_alloc - st.smoothed_alloc) / SMOOTHING_SAMPLES
    upcoming_alloc_est = int(st.smoothed_alloc * float(settings.get("bgwriter_lru_multiplier")))
    if upcoming_alloc_est == 0:
        st.smoothed_alloc = 0.0
    # Even when idle, make some progress: the whole pool every 120 s.
    min_scan_buffers = int(nbuffers / (SCAN_WHOLE_POOL_MILLISECONDS
                                       / float(settings.get("bgwriter_delay"))))
    if upcoming_alloc_est < min_scan_buffers + reusable_buffers_est:
        upcoming_alloc_est = min_scan_buffers + reusable_buffers_est
    # The LRU scan proper.
    num_to_scan = bufs_to_lap
    num_written = 0
    reusable_buffers = reusable_buffers_est
    try:
        while num_to_scan > 0 and reusable_buffers < upcoming_alloc_est:
            sync_state = sync_one_buffer(st.next_to_clean, True, wb_context)
            st.next_to_clean += 1
            if st.next_to_clean >= nbuffers:
                st.next_to_clean = 0
                st.next_passes += 1
            num_to_scan -= 1
            if sync_state & BUF_WRITTEN:
                reusable_buffers += 1
                num_written += 1
                if num_written >= lru_maxpages:
                    checkpointer.pgstat_count_bgwriter("maxwritten_clean")
                    break
            elif sync_state & BUF_REUSABLE:
                reusable_buffers += 1
    finally:
        checkpointer.pgstat_count_bgwriter("buffers_clean", num_written)
    # The scan was like an allocation scan: let it refine the density estimate.
    new_strategy_delta = bufs_to_lap - num_to_scan
    new_recent_alloc = reusable_buffers - reusable_buffers_est
    if new_strategy_delta > 0 and new_recent_alloc > 0:
        scans_per_alloc = new_strategy_delta / new_recent_alloc
        st.smoothed_density += (scans_per_alloc - st.smoothed_density) / SMOOTHING_SAMPLES
    return bufs_to_lap == 0 and recent_alloc == 0


def main(env: child.ChildEnv, settings, segment) -> None:
    """BackgroundWriterMain."""
    interrupts.install_standard_handlers()
    st = BgBufferSyncState()
    wb_context = WritebackContext(settings.get("bgwriter_flush_after"))
    strategy = bufmgr.pool().strategy
    procs = checkpointer._cs.procs if checkpointer._cs is not None else None
    my_procno = procs.my_slot if procs is not None else None
    prev_hibernate = False
    while True:
        child.reset_latch()
        if interrupts.handle_main_loop_interrupts(settings, env.datadir):
            return
        wb_context.flush_after = int(settings.get("bgwriter_flush_after"))
        try:
            can_hibernate = bg_buffer_sync(st, settings, wb_context)
        except Exception as exc:  # noqa: BLE001 - the sigsetjmp block of BackgroundWriterMain
            checkpointer._report_failure(exc)
            bufmgr.at_error_cleanup()
            lwlock_release_all()
            smgr.smgr_close_all()
            time.sleep(1.0)  # at least a second after any error, as PostgreSQL
            continue
        if checkpointer.first_call_since_last_checkpoint():
            smgr.smgr_close_all()  # let go of files dropped meanwhile
        delay = float(settings.get("bgwriter_delay")) / 1000.0
        rc = child.wait_latch(delay)
        if rc & child.WL_POSTMASTER_DEATH:
            child.quick_exit(1)
        if rc == child.WL_TIMEOUT and can_hibernate and prev_hibernate \
                and my_procno is not None:
            strategy.notify_bgwriter(my_procno)
            rc = child.wait_latch(delay * HIBERNATE_FACTOR)
            strategy.notify_bgwriter(-1)
            if rc & child.WL_POSTMASTER_DEATH:
                child.quick_exit(1)
        prev_hibernate = can_hibernate
