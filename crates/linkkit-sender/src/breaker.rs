//! A circuit breaker per endpoint: after a run of failures the endpoint is left alone for a
//! while (its jobs are deferred without being tried and without spending their attempts), then
//! one probe is let through; its success closes the circuit, its failure opens it again for
//! longer.
//!
//! This is a pure state machine over `Instant`s, so its behaviour is tested without sleeping.

use std::time::{Duration, Instant};

/// Failures in a row that open the circuit.
pub const FAILURE_THRESHOLD: u32 = 5;
/// First open period; it doubles on each failed probe up to [`MAX_OPEN`].
pub const FIRST_OPEN: Duration = Duration::from_secs(10);
pub const MAX_OPEN: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Closed: send.
    Send,
    /// Open long enough: send this one as the probe.
    Probe,
    /// Open (or a probe is out): defer for at least this long.
    Defer(Duration),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    Opened,
    Closed,
}

#[derive(Debug, Clone, Default)]
pub struct Breaker {
    consecutive_failures: u32,
    open: Option<Open>,
}

#[derive(Debug, Clone)]
struct Open {
    until: Instant,
    period: Duration,
    probe_out: bool,
}

impl Breaker {
    pub fn admit(&mut self, now: Instant) -> Admission {
        if let Some(wait) = self.deferral(now) {
            return Admission::Defer(wait);
        }
        match &mut self.open {
            None => Admission::Send,
            Some(open) => {
                open.probe_out = true;
                Admission::Probe
            }
        }
    }

    /// How long a job must wait if it asked now, without taking the probe: `None` when the
    /// circuit is closed or a probe may go.
    pub fn deferral(&self, now: Instant) -> Option<Duration> {
        match &self.open {
            None => None,
            Some(open) if now < open.until => Some(open.until - now),
            Some(open) if open.probe_out => Some(open.period.min(FIRST_OPEN)),
            Some(_) => None,
        }
    }

    /// Records the result of an attempt that was not the probe; says when the circuit changed
    /// state. A success closes it; a failure while it is open (an attempt that started before
    /// it opened) changes nothing, so it cannot free a second probe.
    pub fn record(&mut self, succeeded: bool, now: Instant) -> Option<Transition> {
        if succeeded {
            self.consecutive_failures = 0;
            return self.open.take().map(|_| Transition::Closed);
        }
        self.consecutive_failures += 1;
        match &self.open {
            Some(_) => None,
            None if self.consecutive_failures >= FAILURE_THRESHOLD => {
                self.open = Some(Open {
                    until: now + FIRST_OPEN,
                    period: FIRST_OPEN,
                    probe_out: false,
                });
                Some(Transition::Opened)
            }
            None => None,
        }
    }

    /// Records the probe's result: a success closes the circuit, a failure opens it again for
    /// twice as long (up to [`MAX_OPEN`]).
    pub fn record_probe(&mut self, succeeded: bool, now: Instant) -> Option<Transition> {
        if succeeded {
            return self.record(true, now);
        }
        self.consecutive_failures += 1;
        if let Some(open) = &mut self.open {
            open.period = (open.period * 2).min(MAX_OPEN);
            open.until = now + open.period;
            open.probe_out = false;
        }
        None
    }

    /// The probe that was let through will not be sent (its job found no free slot, or its
    /// task ended before the attempt did): the next job may probe instead.
    pub fn abandon_probe(&mut self) {
        if let Some(open) = &mut self.open {
            open.probe_out = false;
        }
    }

    /// True while the circuit is open, including when its period is over and a probe may go.
    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// True when the breaker holds nothing worth remembering.
    pub fn is_idle(&self) -> bool {
        self.consecutive_failures == 0 && self.open.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A breaker whose circuit opened at `start`.
    fn opened_at(start: Instant) -> Breaker {
        let mut breaker = Breaker::default();
        for _ in 0..FAILURE_THRESHOLD {
            breaker.record(false, start);
        }
        breaker
    }

    #[test]
    fn a_run_of_failures_opens_the_circuit_and_jobs_are_deferred() {
        let start = Instant::now();
        let mut breaker = Breaker::default();
        for _ in 0..FAILURE_THRESHOLD - 1 {
            assert_eq!(breaker.admit(start), Admission::Send);
            assert_eq!(breaker.record(false, start), None);
        }
        assert_eq!(breaker.record(false, start), Some(Transition::Opened));
        assert_eq!(
            breaker.deferral(start + Duration::from_secs(4)),
            Some(FIRST_OPEN - Duration::from_secs(4))
        );
        assert_eq!(
            breaker.admit(start + Duration::from_secs(4)),
            Admission::Defer(FIRST_OPEN - Duration::from_secs(4))
        );
    }

    #[test]
    fn after_the_open_period_one_probe_goes_and_its_success_closes_the_circuit() {
        let start = Instant::now();
        let mut breaker = opened_at(start);
        let later = start + FIRST_OPEN;
        assert_eq!(breaker.deferral(later), None, "a probe may go");
        assert!(breaker.is_open(), "open until the probe succeeds");
        assert_eq!(breaker.admit(later), Admission::Probe);
        assert!(
            matches!(breaker.admit(later), Admission::Defer(_)),
            "only one probe at a time"
        );
        assert!(breaker.deferral(later).is_some());
        assert_eq!(breaker.record(true, later), Some(Transition::Closed));
        assert_eq!(breaker.admit(later), Admission::Send);
        assert!(!breaker.is_open());
        assert!(breaker.is_idle());
    }

    #[test]
    fn a_failed_probe_reopens_for_twice_as_long() {
        let start = Instant::now();
        let mut breaker = opened_at(start);
        let probe_time = start + FIRST_OPEN;
        assert_eq!(breaker.admit(probe_time), Admission::Probe);
        assert_eq!(breaker.record_probe(false, probe_time), None);
        assert_eq!(
            breaker.admit(probe_time + FIRST_OPEN),
            Admission::Defer(FIRST_OPEN)
        );
        assert_eq!(breaker.admit(probe_time + FIRST_OPEN * 2), Admission::Probe);
    }

    #[test]
    fn a_late_failure_while_the_probe_is_out_frees_no_second_probe() {
        let start = Instant::now();
        let mut breaker = opened_at(start);
        let later = start + FIRST_OPEN;
        assert_eq!(breaker.admit(later), Admission::Probe);
        assert_eq!(breaker.record(false, later), None, "an attempt from before");
        assert_eq!(breaker.admit(later), Admission::Defer(FIRST_OPEN));
        assert_eq!(breaker.record_probe(true, later), Some(Transition::Closed));
    }

    #[test]
    fn an_abandoned_probe_lets_the_next_job_probe() {
        let start = Instant::now();
        let mut breaker = opened_at(start);
        let later = start + FIRST_OPEN;
        assert_eq!(breaker.admit(later), Admission::Probe);
        breaker.abandon_probe();
        assert_eq!(breaker.admit(later), Admission::Probe);
    }

    #[test]
    fn a_success_between_failures_resets_the_count() {
        let now = Instant::now();
        let mut breaker = Breaker::default();
        for _ in 0..FAILURE_THRESHOLD - 1 {
            breaker.record(false, now);
        }
        breaker.record(true, now);
        for _ in 0..FAILURE_THRESHOLD - 1 {
            breaker.record(false, now);
        }
        assert_eq!(breaker.admit(now), Admission::Send);
    }
}
