"""The cross-process writer lock beside the card log: another process really waits for it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from injectwise.adapters.storage.feedback import FeedbackStore, IssuedCard
from injectwise.adapters.storage.writer_lock import WriterLock

PROBE = """
import sys, time
from pathlib import Path
from injectwise.adapters.storage.writer_lock import WriterLock
lock = WriterLock(Path(sys.argv[1]))
print("free" if lock.try_hold() else "held", flush=True)
t0 = time.monotonic()
with lock.held():
    print(f"{time.monotonic() - t0:.3f}", flush=True)
"""


def test_another_process_waits_for_the_holder_and_gets_the_lock_when_it_is_let_go(tmp_path: Path) -> None:
    db = tmp_path / "cards.db"
    lock = WriterLock(db)
    assert lock.try_hold()
    probe = subprocess.Popen([sys.executable, "-c", PROBE, str(db)], stdout=subprocess.PIPE, text=True)
    assert probe.stdout is not None
    assert probe.stdout.readline().strip() == "held"
    time.sleep(0.3)
    lock.release()
    waited = float(probe.stdout.readline())
    assert probe.wait(timeout=10) == 0
    assert waited >= 0.2  # it blocked while this process held the lock, then got it
    assert (tmp_path / "cards.db-writer.lock").exists()
    lock.close()


def test_an_in_memory_database_has_no_lock_file_and_the_lock_is_a_no_op(tmp_path: Path) -> None:
    lock = WriterLock(None)
    assert lock.try_hold()
    with lock.held():
        pass
    lock.close()
    assert list(tmp_path.iterdir()) == []


def test_card_commits_through_the_lock_are_stored(tmp_path: Path) -> None:
    from datetime import datetime

    store = FeedbackStore(f"sqlite:///{tmp_path / 'cards.db'}")
    card = IssuedCard("u-1", "svc", "order-select", "h-1", "proceed.ok", "1.0.0", "2026.12.2", "info",
                      datetime(2026, 12, 5, 8, 0))
    assert store.log_cards([card], ("iss", "jti-1", time.time() + 60)).result(timeout=10) is True
    assert store.log_cards([card], ("iss", "jti-1", time.time() + 60)).result(timeout=10) is False  # replay
    assert store.finding_for(["u-1"]) == {"u-1": "proceed.ok"}
    store.close()
