"""The observer seam: several observers as one, one that raises does not hurt the rest, and the service's wakeups."""

from __future__ import annotations

from structlog.testing import capture_logs

from durabot.engine.runner import Applied
from durabot.observe import BaseObserver, Observer, Observers, Wakeups
from durabot.replies import Reply
from tests.recorder import Recorder


class Broken(BaseObserver):
    def updates_stored(self, new: int, waiting: int) -> None:
        raise RuntimeError("a metric fell over")


def test_every_observer_hears_every_report_in_order() -> None:
    first, second = Recorder(), Recorder()
    observers = Observers([first])
    observers.add(second)
    applied = Applied(7, "applied", (Reply("hi"),))
    observers.updates_stored(2, 1)
    observers.update_applied(applied)
    observers.message_sent("send_message")
    observers.send_failed("send_message", gave_up=True)
    observers.leadership_changed(polling=True)
    expected = [
        ("updates_stored", 2, 1),
        ("update_applied", 7, "applied"),
        ("message_sent", "send_message"),
        ("send_failed", "send_message", True),
        ("leadership_changed", True),
    ]
    assert first.calls == second.calls == expected


def test_an_observer_that_raises_is_logged_and_the_others_still_hear() -> None:
    after = Recorder()
    observers = Observers([Broken(), after])
    with capture_logs() as logs:
        observers.updates_stored(1, 1)
    assert after.calls == [("updates_stored", 1, 1)]
    [failed] = logs
    assert (failed["event"], failed["observer"], failed["method"], failed["log_level"]) == (
        "observer.failed", "Broken", "updates_stored", "error"
    )


def test_the_base_observer_ignores_everything_and_satisfies_the_protocol() -> None:
    observer: Observer = BaseObserver()
    observer.updates_stored(1, 1)
    observer.update_applied(Applied(1, "applied", ()))
    observer.message_sent("send_message")
    observer.send_failed("send_message", gave_up=False)
    observer.leadership_changed(polling=False)


def test_wakeups_wake_processing_only_for_waiting_updates_and_the_relay_only_for_queued_replies() -> None:
    wakeups = Wakeups()
    wakeups.updates_stored(new=3, waiting=0)
    wakeups.update_applied(Applied(1, "applied", ()))
    assert not wakeups.inbox.is_set() and not wakeups.outbox.is_set()
    wakeups.updates_stored(new=1, waiting=1)
    assert wakeups.inbox.is_set() and not wakeups.outbox.is_set()
    wakeups.update_applied(Applied(2, "applied", (Reply("hi"),)))
    assert wakeups.outbox.is_set()
