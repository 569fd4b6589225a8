"""The lockout guard: a wrong password reaches at most N hosts, however many probes run at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engine.lockout import Admission, LockoutGuard

T0 = datetime(2026, 11, 24, 9, tzinfo=UTC)


def guard(cooldown: timedelta | None = None) -> LockoutGuard:
    return LockoutGuard(max_failures=3, window=timedelta(minutes=10), cooldown=cooldown)


def test_a_wrong_password_reaches_at_most_n_hosts_at_any_concurrency() -> None:
    lockout = guard()
    admitted = [lockout.admit("svc", T0) for _ in range(500)]
    assert admitted.count(Admission.ALLOW) == 3
    assert set(admitted[3:]) == {Admission.WAIT}
    suspensions = [lockout.finished("svc", outcome="auth_failed", now=T0) for _ in range(3)]
    assert suspensions[:2] == [None, None]
    assert suspensions[2] is not None
    assert suspensions[2].failures == 3
    assert lockout.admit("svc", T0) is Admission.SUSPENDED


def test_a_proven_password_runs_at_full_concurrency() -> None:
    lockout = guard()
    assert lockout.admit("svc", T0) is Admission.ALLOW
    lockout.finished("svc", outcome="ok", now=T0)
    assert all(lockout.admit("svc", T0) is Admission.ALLOW for _ in range(300))


def test_a_handshake_accepted_mid_probe_ends_probation_at_once() -> None:
    lockout = guard()
    assert [lockout.admit("svc", T0) for _ in range(4)].count(Admission.ALLOW) == 3
    assert lockout.authenticated("svc") is True  # this call ended probation
    assert lockout.authenticated("svc") is False  # later ones change nothing
    assert all(lockout.admit("svc", T0) is Admission.ALLOW for _ in range(300))


def test_a_suspended_password_stays_suspended_whatever_a_late_handshake_says() -> None:
    lockout = guard()
    for _ in range(3):
        lockout.admit("svc", T0)
        lockout.finished("svc", outcome="auth_failed", now=T0)
    assert lockout.authenticated("svc") is False
    assert lockout.admit("svc", T0) is Admission.SUSPENDED


def test_an_auth_failure_puts_a_proven_password_back_on_probation() -> None:
    lockout = guard()
    lockout.admit("svc", T0)
    lockout.finished("svc", outcome="ok", now=T0)
    lockout.admit("svc", T0)
    lockout.finished("svc", outcome="auth_failed", now=T0)
    # Two failures left in the budget, so two probes at most may be in flight.
    assert [lockout.admit("svc", T0) for _ in range(3)] == [
        Admission.ALLOW,
        Admission.ALLOW,
        Admission.WAIT,
    ]


def test_unreachable_hosts_say_nothing_about_the_password() -> None:
    lockout = guard()
    for _ in range(10):
        assert lockout.admit("svc", T0) is Admission.ALLOW
        assert lockout.finished("svc", outcome="unreachable", now=T0) is None


def test_failures_outside_the_window_are_forgotten() -> None:
    lockout = guard()
    for minute in (0, 6, 12):  # never three within ten minutes
        lockout.admit("svc", T0 + timedelta(minutes=minute))
        assert (
            lockout.finished("svc", outcome="auth_failed", now=T0 + timedelta(minutes=minute))
            is None
        )


def test_profiles_are_independent_and_resume_restores_probation() -> None:
    lockout = guard()
    for _ in range(3):
        lockout.admit("bad", T0)
        lockout.finished("bad", outcome="auth_failed", now=T0)
    assert lockout.admit("good", T0) is Admission.ALLOW
    assert set(lockout.suspended(T0)) == {"bad"}
    lockout.resume("bad")
    assert lockout.suspended(T0) == {}
    assert [lockout.admit("bad", T0) for _ in range(4)].count(Admission.ALLOW) == 3


def test_cooldown_lifts_a_suspension_by_itself() -> None:
    lockout = guard(cooldown=timedelta(minutes=30))
    for _ in range(3):
        lockout.admit("svc", T0)
        suspension = lockout.finished("svc", outcome="auth_failed", now=T0)
    assert suspension is not None
    assert suspension.until == T0 + timedelta(minutes=30)
    assert lockout.admit("svc", T0 + timedelta(minutes=29)) is Admission.SUSPENDED
    assert lockout.admit("svc", T0 + timedelta(minutes=31)) is Admission.ALLOW
