"""The self-check service's share: one check at a time, at most one per student running or waiting, the others
served in the order they asked, so one student flooding the service delays a classmate by at most one check."""
import threading
import time

import pytest

from autograder.selfcheck import Refused, Turns

CHECK = 0.5  # seconds one (fake) check takes


def ask(turns: Turns, student: str, log: list, seconds: float = CHECK) -> None:
    asked = time.monotonic()
    try:
        with turns.turn(student):
            log.append((student, "start", time.monotonic() - asked))
            time.sleep(seconds)
    except Refused as err:
        log.append((student, "refused", err.status))


def test_a_flooding_student_gets_one_check_and_a_classmate_starts_within_one_checks_time():
    turns, log, stop = Turns(), [], threading.Event()

    def flood():  # asks again the moment an answer comes, and 5 more times meanwhile
        while not stop.is_set():
            extra = [threading.Thread(target=ask, args=(turns, "flooder", log)) for _ in range(5)]
            for thread in extra:
                thread.start()
            for thread in extra:
                thread.join()

    flooder = threading.Thread(target=flood)
    flooder.start()
    time.sleep(CHECK / 2)  # the flooder's first check runs
    classmate = threading.Thread(target=ask, args=(turns, "classmate", log))
    classmate.start()
    classmate.join(timeout=10)
    stop.set()
    flooder.join()
    (waited,) = [seconds for student, what, seconds in log if (student, what) == ("classmate", "start")]
    assert waited <= CHECK + 0.2, waited
    assert {seconds for student, what, seconds in log if (student, what) == ("flooder", "refused")} == {429}
    starts = [student for student, what, _ in log if what == "start"]
    assert starts[:2] == ["flooder", "classmate"]


def test_students_are_served_in_the_order_they_asked_one_check_at_a_time():
    turns, log = Turns(), []
    threads = []
    for student in ("first", "second", "third", "fourth"):
        threads.append(threading.Thread(target=ask, args=(turns, student, log, 0.2)))
        threads[-1].start()
        time.sleep(0.05)  # asked in this order while the first runs
    for thread in threads:
        thread.join()
    assert [student for student, what, _ in log if what == "start"] == ["first", "second", "third", "fourth"]
    waits = [seconds for _, what, seconds in log if what == "start"]
    assert all(later > earlier for earlier, later in zip(waits, waits[1:]))  # never two at once


def test_a_failing_check_gives_the_slot_back():
    turns = Turns()
    with pytest.raises(RuntimeError):
        with turns.turn("a"):
            raise RuntimeError("the grader failed")
    with turns.turn("a"):  # neither the student nor the service stays blocked
        pass
