//! The retry schedule, the delay tiers that carry it, and the decision taken after each attempt.
//!
//! RabbitMQ has no delayed delivery here, so a delay is a queue with a fixed message TTL that
//! dead-letters back to the deliveries queue. Because a queue only expires messages at its head,
//! every queue holds exactly one delay, and jitter is a choice between several such queues
//! (80%, 90%, 100%, 110%, 120% of each scheduled delay): a short wait never sits behind a long one.

use std::time::Duration;

use rand::Rng;

use crate::duration::{parse_duration, InvalidDuration};

/// The default `LINKKIT_RETRY_SCHEDULE`.
pub const DEFAULT_SCHEDULE: &str = "5s,5m,30m,2h,5h,10h,10h";
/// Jitter buckets in percent of the scheduled delay: ±20% in steps of 10%.
const JITTER_PERCENTS: [u32; 5] = [80, 90, 100, 110, 120];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSchedule {
    #[error(transparent)]
    Duration(#[from] InvalidDuration),
    #[error("a retry delay must be at least 1s")]
    TooShort,
}

/// The delays before each retry that follows the first attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
}

impl RetrySchedule {
    /// Parses `5s,5m,30m`. An empty string means "never retry".
    pub fn parse(text: &str) -> Result<Self, InvalidSchedule> {
        let mut delays = Vec::new();
        for part in text
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
        {
            let delay = parse_duration(part)?;
            if delay < Duration::from_secs(1) {
                return Err(InvalidSchedule::TooShort);
            }
            delays.push(delay);
        }
        Ok(Self { delays })
    }

    pub fn delays(&self) -> &[Duration] {
        &self.delays
    }

    /// Attempts in all: the first, then one per scheduled delay.
    pub fn max_attempts(&self) -> u32 {
        self.delays.len() as u32 + 1
    }

    /// The scheduled wait after attempt number `attempt` (1-based) failed, or `None` when that
    /// was the last attempt.
    pub fn delay_after(&self, attempt: u32) -> Option<Duration> {
        let index = usize::try_from(attempt.checked_sub(1)?).ok()?;
        self.delays.get(index).copied()
    }

    pub fn longest_delay(&self) -> Duration {
        self.delays.iter().copied().max().unwrap_or_default()
    }

    /// Every delay a retry queue must exist for, sorted and without repeats.
    pub fn tiers(&self) -> Vec<Duration> {
        let mut tiers: Vec<Duration> = self
            .delays
            .iter()
            .flat_map(|delay| JITTER_PERCENTS.map(|percent| jittered(*delay, percent)))
            .collect();
        tiers.sort();
        tiers.dedup();
        tiers
    }

    /// The retry queue delay for a wait: a random jitter bucket of a scheduled delay, or the
    /// shortest tier that waits at least as long as a server's `Retry-After` asked.
    pub fn tier_for(&self, wait: RetryWait, rng: &mut impl Rng) -> Duration {
        match wait {
            RetryWait::Scheduled(delay) => jittered(
                delay,
                JITTER_PERCENTS[rng.gen_range(0..JITTER_PERCENTS.len())],
            ),
            RetryWait::AtLeast(minimum) => self.tier_at_least(minimum).unwrap_or(minimum),
        }
    }

    /// The shortest time a job turned away from its endpoint (circuit open, endpoint stuck or
    /// busy) is parked for: the schedule's shortest delay, so a parked job is looked at again
    /// once per retry delay at most, not every moment the endpoint stays down. A second when
    /// the schedule has no retries.
    pub fn shortest_park(&self) -> Duration {
        self.delays
            .iter()
            .copied()
            .min()
            .unwrap_or(Duration::from_secs(1))
    }

    /// How long a job turned away from its endpoint is parked: as long as asked, and never
    /// less than [`RetrySchedule::shortest_park`].
    pub fn park_for(&self, at_least: Option<Duration>) -> Duration {
        at_least.unwrap_or_default().max(self.shortest_park())
    }

    /// The longest a job can wait in a retry queue (zero without retry queues).
    pub fn longest_tier(&self) -> Duration {
        self.tiers().last().copied().unwrap_or_default()
    }

    /// The retry queue for a job that must wait at least `minimum`: the shortest tier that
    /// long, else the longest tier; `None` when the schedule has no retry queues at all.
    pub fn tier_at_least(&self, minimum: Duration) -> Option<Duration> {
        let tiers = self.tiers();
        tiers
            .iter()
            .copied()
            .find(|tier| *tier >= minimum)
            .or_else(|| tiers.last().copied())
    }
}

fn jittered(delay: Duration, percent: u32) -> Duration {
    // Whole milliseconds keep queue names short and TTLs exact.
    Duration::from_millis((delay.as_millis() as u64).saturating_mul(percent as u64) / 100)
}

/// What one attempt produced, as far as the retry decision cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    /// The endpoint answered with this status (a redirect counts as an answer, not followed).
    Status {
        code: u16,
        retry_after: Option<Duration>,
    },
    /// No answer: timeout, refused connection, DNS or TLS failure, or a refused address.
    NoResponse,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryWait {
    /// The schedule's delay for this attempt; jitter is applied when a tier is chosen.
    Scheduled(Duration),
    /// The endpoint asked (`Retry-After` on 429/503) to wait at least this long.
    AtLeast(Duration),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Succeeded,
    Retry(RetryWait),
    /// The schedule is exhausted: the job goes to the dead-letter queue.
    GiveUp,
    /// `410 Gone`: the endpoint asked never to be called again.
    DisableEndpoint,
}

/// Decides what follows attempt number `attempt` (1-based).
pub fn decide(schedule: &RetrySchedule, attempt: u32, result: AttemptResult) -> Decision {
    let retry_after = match result {
        AttemptResult::Status {
            code: 200..=299, ..
        } => return Decision::Succeeded,
        AttemptResult::Status { code: 410, .. } => return Decision::DisableEndpoint,
        AttemptResult::Status {
            code: 429 | 503,
            retry_after,
        } => retry_after,
        AttemptResult::Status { .. } | AttemptResult::NoResponse => None,
    };
    let Some(scheduled) = schedule.delay_after(attempt) else {
        return Decision::GiveUp;
    };
    match retry_after {
        Some(asked) if asked > scheduled => {
            Decision::Retry(RetryWait::AtLeast(asked.min(schedule.longest_delay())))
        }
        _ => Decision::Retry(RetryWait::Scheduled(scheduled)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::mock::StepRng;

    fn default_schedule() -> RetrySchedule {
        RetrySchedule::parse(DEFAULT_SCHEDULE).unwrap()
    }

    fn status(code: u16) -> AttemptResult {
        AttemptResult::Status {
            code,
            retry_after: None,
        }
    }

    #[test]
    fn the_default_schedule_gives_eight_attempts() {
        let schedule = default_schedule();
        assert_eq!(schedule.max_attempts(), 8);
        assert_eq!(schedule.delay_after(1), Some(Duration::from_secs(5)));
        assert_eq!(schedule.delay_after(7), Some(Duration::from_secs(36_000)));
        assert_eq!(schedule.delay_after(8), None);
        assert_eq!(schedule.delay_after(0), None);
    }

    #[test]
    fn any_2xx_succeeds() {
        for code in [200, 201, 202, 204, 299] {
            assert_eq!(
                decide(&default_schedule(), 1, status(code)),
                Decision::Succeeded
            );
        }
    }

    #[test]
    fn redirects_client_errors_server_errors_and_silence_are_retried() {
        for result in [
            status(301),
            status(400),
            status(404),
            status(500),
            AttemptResult::NoResponse,
        ] {
            assert_eq!(
                decide(&default_schedule(), 2, result),
                Decision::Retry(RetryWait::Scheduled(Duration::from_secs(300)))
            );
        }
    }

    #[test]
    fn the_last_attempt_gives_up() {
        assert_eq!(
            decide(&default_schedule(), 8, status(500)),
            Decision::GiveUp
        );
        assert_eq!(
            decide(&RetrySchedule::parse("").unwrap(), 1, status(500)),
            Decision::GiveUp
        );
    }

    #[test]
    fn gone_disables_the_endpoint() {
        assert_eq!(
            decide(&default_schedule(), 1, status(410)),
            Decision::DisableEndpoint
        );
    }

    #[test]
    fn retry_after_is_honoured_but_capped_by_the_longest_delay() {
        let schedule = default_schedule();
        let asked = |secs| AttemptResult::Status {
            code: 429,
            retry_after: Some(Duration::from_secs(secs)),
        };
        assert_eq!(
            decide(&schedule, 1, asked(60)),
            Decision::Retry(RetryWait::AtLeast(Duration::from_secs(60)))
        );
        assert_eq!(
            decide(&schedule, 1, asked(999_999)),
            Decision::Retry(RetryWait::AtLeast(Duration::from_secs(36_000)))
        );
        // Asking for less than the schedule changes nothing.
        assert_eq!(
            decide(&schedule, 2, asked(1)),
            Decision::Retry(RetryWait::Scheduled(Duration::from_secs(300)))
        );
    }

    #[test]
    fn a_turned_away_job_is_parked_for_the_shortest_delay_at_least() {
        assert_eq!(
            RetrySchedule::parse("1m,10s,5m").unwrap().shortest_park(),
            Duration::from_secs(10)
        );
        assert_eq!(
            RetrySchedule::parse("").unwrap().shortest_park(),
            Duration::from_secs(1),
            "a schedule without retries still parks"
        );
        let schedule = RetrySchedule::parse("5s,5m").unwrap();
        let secs = |at_least| schedule.park_for(at_least).as_secs();
        assert_eq!(secs(None), 5);
        assert_eq!(secs(Some(Duration::from_secs(2))), 5);
        assert_eq!(secs(Some(Duration::from_secs(40))), 40);
    }

    #[test]
    fn tiers_cover_every_jitter_bucket_and_retry_after_picks_the_next_longer_tier() {
        let schedule = RetrySchedule::parse("10s,1m").unwrap();
        let tiers: Vec<u64> = schedule
            .tiers()
            .iter()
            .map(|d| d.as_millis() as u64)
            .collect();
        assert_eq!(
            tiers,
            [8_000, 9_000, 10_000, 11_000, 12_000, 48_000, 54_000, 60_000, 66_000, 72_000]
        );
        let mut rng = StepRng::new(0, 1);
        assert_eq!(
            schedule.tier_for(RetryWait::AtLeast(Duration::from_secs(30)), &mut rng),
            Duration::from_secs(48)
        );
        assert_eq!(
            schedule.tier_for(RetryWait::AtLeast(Duration::from_secs(500)), &mut rng),
            Duration::from_secs(72)
        );
        let jittered = schedule.tier_for(
            RetryWait::Scheduled(Duration::from_secs(10)),
            &mut rand::thread_rng(),
        );
        assert!(schedule.tiers().contains(&jittered));
        assert!((Duration::from_secs(8)..=Duration::from_secs(12)).contains(&jittered));
    }

    #[test]
    fn the_longest_tier_is_the_longest_delay_at_its_highest_jitter() {
        assert_eq!(
            default_schedule().longest_tier(),
            Duration::from_secs(12 * 3600)
        );
        assert_eq!(
            RetrySchedule::parse("").unwrap().longest_tier(),
            Duration::ZERO
        );
    }

    #[test]
    fn a_job_parked_for_a_while_goes_to_an_existing_queue_and_without_retries_to_none() {
        let schedule = RetrySchedule::parse("10s,1m").unwrap();
        assert_eq!(
            schedule.tier_at_least(Duration::from_secs(30)),
            Some(Duration::from_secs(48))
        );
        assert_eq!(
            schedule.tier_at_least(Duration::ZERO),
            Some(Duration::from_secs(8))
        );
        let never = RetrySchedule::parse("").unwrap();
        assert_eq!(
            never.tier_at_least(Duration::from_secs(10)),
            None,
            "no queue exists to park in, so none is named"
        );
    }

    #[test]
    fn bad_schedules_are_refused() {
        assert!(RetrySchedule::parse("5s,soon").is_err());
        assert_eq!(
            RetrySchedule::parse("500ms"),
            Err(InvalidSchedule::TooShort)
        );
    }
}
