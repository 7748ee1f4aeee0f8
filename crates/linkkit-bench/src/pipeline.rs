//! Scenarios that run the real services' code (in this process, as the tests do) against the
//! local RabbitMQ, Redis and Postgres, delivering to the fast in-process receiver.

use std::time::{Duration, Instant};

use chrono::Utc;
use linkkit::Service;
use linkkit_bus::{Broker, Outgoing, Publisher};
use linkkit_core::{Envelope, EventType, WorkspaceId};
use linkkit_tests::TestEnv;
use serde_json::json;

use crate::cpu::{self, CpuUse};
use crate::receiver::{now_us, Behaviour, BenchReceiver};
use crate::stats::percentile;

/// Settings of every scenario: the defaults of production, with receivers on localhost.
const SETTINGS: &[(&str, &str)] = &[
    ("LINKKIT_RETRY_SCHEDULE", "5s,5m,30m,2h,5h,10h,10h"),
    ("LINKKIT_DELIVERY_TIMEOUT", "15s"),
    ("LINKKIT_API_RATE_LIMIT", "0"),
];
const LONG: Duration = Duration::from_secs(900);

/// Settings given with `--set`, over [`SETTINGS`] in every pipeline scenario (a scenario's own
/// settings still win: they are what it measures).
static OVERRIDES: std::sync::OnceLock<Vec<(String, String)>> = std::sync::OnceLock::new();

/// Sets the `--set` overrides, once, before any scenario runs.
pub fn set_overrides(overrides: Vec<(String, String)>) {
    OVERRIDES
        .set(overrides)
        .expect("the overrides are set once");
}

/// The link every benchmark click is of; it exists, so each click is counted on a real row.
const CLICKED_LINK: &str = "lnk_00000000000070008000000000000000";

/// A `link.clicked` stamped with the moment it was published, for lag measurement.
pub fn click() -> Envelope {
    Envelope::new(
        EventType::LinkClicked,
        json!({
            "link_id": CLICKED_LINK,
            "short_url": "https://lkkt.in/bench",
            "destination_url": "https://example.com/bench",
            "segment": "Benchmark",
            "campaign": null,
            "click_location": "Unknown",
            "device": "Desktop",
            "sent_at_us": now_us(),
        }),
    )
}

struct Bench {
    env: TestEnv,
    workspace: WorkspaceId,
    publisher: Publisher,
    broker: Broker,
    receiver: BenchReceiver,
}

impl Bench {
    async fn start(extra: &[(&str, &str)], parts: &[Service]) -> Self {
        let mut settings = SETTINGS.to_vec();
        settings.extend(
            OVERRIDES
                .get()
                .into_iter()
                .flatten()
                .map(|(name, value)| (name.as_str(), value.as_str())),
        );
        settings.extend_from_slice(extra);
        let env = TestEnv::start_parts(&settings, parts).await;
        let workspace = env.create_workspace("Bench").await;
        let broker = Broker::new(env.config.amqp_url.expose());
        let publisher = Publisher::new(broker.clone(), env.topology());
        let receiver = BenchReceiver::start().await;
        sqlx::query(
            "INSERT INTO links (id, workspace_id, slug, destination_url, created_at, updated_at) \
             VALUES ($1, $2, 'bench', 'https://example.com/bench', now(), now())",
        )
        .bind(CLICKED_LINK)
        .bind(&workspace.id)
        .execute(&env.pool)
        .await
        .expect("the clicked link inserted");
        Self {
            workspace: WorkspaceId::parse(&workspace.id).unwrap(),
            env,
            publisher,
            broker,
            receiver,
        }
    }

    /// Adds `count` endpoints named `{prefix}{i}`, subscribed to `events`.
    async fn endpoints(&self, prefix: &str, count: usize, behaviour: Behaviour, events: &str) {
        let urls: Vec<String> = (0..count)
            .map(|i| self.receiver.url(&format!("{prefix}{i}"), behaviour))
            .collect();
        sqlx::query(
            "INSERT INTO endpoints (id, workspace_id, url, events, secret, created_at, updated_at) \
             SELECT 'ep_' || replace(gen_random_uuid()::text, '-', ''), $1, u, ARRAY[$2], $3, now(), now() \
             FROM UNNEST($4::text[]) AS u",
        )
        .bind(self.workspace.as_str())
        .bind(events)
        .bind(linkkit_core::signing::WebhookSecret::generate().expose())
        .bind(&urls)
        .execute(&self.env.pool)
        .await
        .expect("endpoints inserted");
        // A database in service has statistics; without them the planner cannot know the
        // subscription index is selective and scans the workspace's endpoints instead.
        sqlx::query("ANALYZE endpoints")
            .execute(&self.env.pool)
            .await
            .expect("endpoints analyzed");
    }

    async fn publish(&self, events: &[Envelope]) {
        for chunk in events.chunks(5_000) {
            let messages: Vec<Outgoing> = chunk
                .iter()
                .map(|e| {
                    Outgoing::event(&self.env.config.namespace, &self.workspace, e, Utc::now())
                })
                .collect();
            self.publisher
                .publish_all(&messages)
                .await
                .expect("the broker confirms");
        }
    }

    /// Waits until `queue` has `count` consumers (the worker processes are up), for up to 15 s:
    /// on a cluster the count a passive declare reports can lag behind, so after that the run
    /// goes on (each process starts consuming within a second of starting).
    async fn wait_for_consumers(&self, queue: &str, count: usize) {
        for _ in 0..150 {
            if self.env.queue_consumers(queue).await as usize >= count {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        eprintln!("{queue}: fewer than {count} consumers reported after 15 s; going on");
    }

    /// Publishes `events` clicks and waits for `expected` more deliveries; deliveries/s from
    /// the first publish to the last delivery.
    async fn clicks_delivered_per_second(&self, events: usize, expected: usize) -> f64 {
        let batch: Vec<Envelope> = (0..events).map(|_| click()).collect();
        let before = self.receiver.delivered();
        let started = Instant::now();
        self.publish(&batch).await;
        assert!(
            self.receiver.wait_for(before + expected, LONG).await,
            "every event delivered"
        );
        expected as f64 / started.elapsed().as_secs_f64()
    }

    /// Publishes `events` clicks keeping at most `in_flight` of them published but not yet
    /// delivered, as the ceiling's publisher keeps its window: the queues stay short and every
    /// message finds a consumer waiting. Deliveries/s from the first publish to the last
    /// delivery.
    async fn clicks_delivered_per_second_steadily(&self, events: usize, in_flight: usize) -> f64 {
        const CHUNK: usize = 250;
        let started = Instant::now();
        let mut published = 0;
        while published < events {
            if published.saturating_sub(self.receiver.delivered()) + CHUNK > in_flight {
                tokio::time::sleep(Duration::from_micros(500)).await;
                continue;
            }
            let count = CHUNK.min(events - published);
            let batch: Vec<Envelope> = (0..count).map(|_| click()).collect();
            self.publish(&batch).await;
            published += count;
        }
        assert!(
            self.receiver.wait_for(events, LONG).await,
            "every event delivered"
        );
        events as f64 / started.elapsed().as_secs_f64()
    }

    async fn attempts_recorded(&self) -> i64 {
        let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM delivery_attempts")
            .fetch_one(&self.env.pool)
            .await
            .unwrap();
        count
    }

    async fn stop(self) {
        self.broker.close().await;
        self.env.stop().await;
    }
}

/// Which consumers of the events exchange run in the throughput scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Every service in one process, as `linkkit all` runs them.
    AsDeployed,
    /// The webhook pipeline alone: fan-out and sender, without the API and its outbox relay.
    PipelineOnly,
    /// As deployed, with events published no faster than they are delivered (at most
    /// [`STEADY_IN_FLIGHT`] waiting), so no backlog forms: the broker's cheapest path, the
    /// one its ceiling takes.
    Steady,
}

/// Events published but not yet delivered in the steady shape: fewer than the fan-out's and
/// the sender's prefetch, so the broker hands every message straight to a waiting consumer.
pub const STEADY_IN_FLIGHT: usize = 2_000;

/// Deliveries per second, end to end, for `events` events to one endpoint, and the machine's
/// CPU from the first publish to the last delivery; every attempt is recorded before the figure
/// is taken.
pub async fn throughput(events: usize, shape: Shape) -> (f64, CpuUse) {
    let bench = match shape {
        Shape::AsDeployed | Shape::Steady => Bench::start(&[], &[Service::All]).await,
        Shape::PipelineOnly => Bench::start(&[], &[Service::Fanout, Service::Sender]).await,
    };
    bench
        .endpoints("one", 1, Behaviour::Healthy, "link.clicked")
        .await;
    let (rate, cpu) = if shape == Shape::Steady {
        cpu::measure(bench.clicks_delivered_per_second_steadily(events, STEADY_IN_FLIGHT)).await
    } else {
        cpu::measure(bench.clicks_delivered_per_second(events, events)).await
    };
    while bench.attempts_recorded().await < events as i64 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bench.stop().await;
    (rate, cpu)
}

/// p50/p95/p99/max event-to-delivery in ms, at `rate` events/s for `seconds`.
pub async fn latency(rate: usize, seconds: u64) -> [f64; 4] {
    let bench = Bench::start(&[], &[Service::All]).await;
    bench
        .endpoints("one", 1, Behaviour::Healthy, "link.clicked")
        .await;
    let per_tick = (rate / 100).max(1);
    let mut ticks = tokio::time::interval(Duration::from_millis(10));
    let total = per_tick * 100 * seconds as usize;
    let mut sent = 0;
    while sent < total {
        ticks.tick().await;
        let batch: Vec<Envelope> = (0..per_tick).map(|_| click()).collect();
        bench.publish(&batch).await;
        sent += per_tick;
    }
    assert!(bench.receiver.wait_for(total, LONG).await);
    let lags = bench.receiver.lags("one");
    bench.stop().await;
    [
        percentile(&lags, 50.0),
        percentile(&lags, 95.0),
        percentile(&lags, 99.0),
        percentile(&lags, 100.0),
    ]
}

/// Seconds from publishing one event to its delivery at the last of `endpoints` endpoints
/// (measured on a second event, once connections are warm).
pub async fn fan_out(endpoints: usize) -> f64 {
    let bench = Bench::start(&[], &[Service::All]).await;
    bench
        .endpoints("ep", endpoints, Behaviour::Healthy, "link.clicked")
        .await;
    bench.publish(&[click()]).await;
    assert!(bench.receiver.wait_for(endpoints, LONG).await);
    let started = Instant::now();
    bench.publish(&[click()]).await;
    assert!(bench.receiver.wait_for(2 * endpoints, LONG).await);
    let elapsed = started.elapsed().as_secs_f64();
    bench.stop().await;
    elapsed
}

/// When the bad neighbours start to fail, in the neighbours scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Onset {
    /// With the measured events: the circuits open and the first jobs are parked meanwhile.
    Now,
    /// A batch of events earlier: the bad endpoints' jobs of that batch are already parked
    /// (their circuits open, the hanging ones stuck) and come due while the measured events
    /// are delivered, as they do while an endpoint stays down.
    BatchBefore,
}

/// Healthy endpoints' deliveries/s and p99 lag (ms) with `bad` of 100 endpoints failing (half
/// answer 500, half hang past the timeout), for `events` events to all of them; and the
/// machine's CPU until the last healthy delivery.
pub async fn neighbours(bad: usize, events: usize, onset: Onset) -> (f64, f64, CpuUse) {
    let bench = Bench::start(&[], &[Service::All]).await;
    let healthy = 100 - bad;
    bench
        .endpoints("healthy", healthy, Behaviour::Healthy, "link.clicked")
        .await;
    bench
        .endpoints("failing", bad / 2, Behaviour::Failing, "link.clicked")
        .await;
    bench
        .endpoints("hanging", bad - bad / 2, Behaviour::Hanging, "link.clicked")
        .await;
    if onset == Onset::BatchBefore {
        bench
            .clicks_delivered_per_second(events, healthy * events)
            .await;
        bench.receiver.forget_lags();
    }
    let (rate, cpu) =
        cpu::measure(bench.clicks_delivered_per_second(events, healthy * events)).await;
    let lags = bench.receiver.lags("healthy");
    bench.stop().await;
    (rate, percentile(&lags, 99.0), cpu)
}

/// Deliveries/s with `endpoints` endpoints in the workspace, one of them subscribed.
pub async fn growth(endpoints: usize, events: usize) -> f64 {
    let bench = Bench::start(&[], &[Service::All]).await;
    bench
        .endpoints("subscribed", 1, Behaviour::Healthy, "link.clicked")
        .await;
    bench
        .endpoints("other", endpoints - 1, Behaviour::Healthy, "link.deleted")
        .await;
    let rate = bench.clicks_delivered_per_second(events, events).await;
    bench.stop().await;
    rate
}

/// Deliveries/s with `fanouts` fan-out and `senders` sender processes (real `linkkit fanout`
/// and `linkkit sender` processes, the API in this one), `events` events to one endpoint.
/// `extra` may point every part at a cluster (`LINKKIT_AMQP_URL`, `LINKKIT_QUEUE_TYPE`).
pub async fn scaling(events: usize, fanouts: usize, senders: usize, extra: &[(&str, &str)]) -> f64 {
    let bench = Bench::start(extra, &[Service::Api]).await;
    bench
        .endpoints("one", 1, Behaviour::Healthy, "link.clicked")
        .await;
    let mut workers = Vec::new();
    for _ in 0..fanouts {
        workers.push(bench.env.spawn_linkkit("fanout"));
    }
    for _ in 0..senders {
        workers.push(bench.env.spawn_linkkit("sender"));
    }
    let namespace = &bench.env.config.namespace;
    bench
        .wait_for_consumers(&namespace.fanout_queue(), fanouts)
        .await;
    bench
        .wait_for_consumers(&namespace.deliveries(), senders)
        .await;
    let rate = bench.clicks_delivered_per_second(events, events).await;
    for worker in &mut workers {
        worker.start_kill().ok();
        let _ = worker.wait().await;
    }
    bench.stop().await;
    rate
}

/// Peak RSS (MiB) of a fan-out process and a sender process working through `backlog` jobs,
/// with RSS samples as the backlog is worked through.
///
/// The fan-out runs unbounded here (`LINKKIT_FANOUT_MAX_QUEUED_JOBS=0`): with no sender, a
/// bounded one would stop a thousand jobs in, and the backlog is the point.
pub async fn memory(backlog: usize) -> (f64, f64, Vec<String>) {
    let bench = Bench::start(&[("LINKKIT_FANOUT_MAX_QUEUED_JOBS", "0")], &[Service::Api]).await;
    bench
        .endpoints("one", 1, Behaviour::Healthy, "link.clicked")
        .await;
    let batch: Vec<Envelope> = (0..backlog).map(|_| click()).collect();
    bench.publish(&batch).await;
    let mut notes = Vec::new();

    let mut fanout = bench.env.spawn_linkkit("fanout");
    let fanout_pid = fanout.id().expect("running");
    let deliveries = bench.env.config.namespace.deliveries();
    let mut fanout_peak = 0.0f64;
    let mut next_note = backlog / 4;
    loop {
        fanout_peak = fanout_peak.max(rss_mib(fanout_pid));
        let queued = bench.env.queue_depth(&deliveries).await as usize;
        if queued >= next_note {
            notes.push(format!(
                "fan-out at {queued} jobs queued: {:.0} MiB",
                rss_mib(fanout_pid)
            ));
            next_note += backlog / 4;
        }
        if queued >= backlog {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    fanout.start_kill().ok();
    let _ = fanout.wait().await;

    let mut sender = bench.env.spawn_linkkit("sender");
    let sender_pid = sender.id().expect("running");
    let mut sender_peak = 0.0f64;
    let mut next_note = backlog / 4;
    while bench.receiver.delivered() < backlog {
        sender_peak = sender_peak.max(rss_mib(sender_pid));
        let delivered = bench.receiver.delivered();
        if delivered >= next_note {
            notes.push(format!(
                "sender at {delivered} delivered: {:.0} MiB",
                rss_mib(sender_pid)
            ));
            next_note += backlog / 4;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    sender.start_kill().ok();
    let _ = sender.wait().await;
    bench.stop().await;
    (fanout_peak, sender_peak, notes)
}

/// Resident memory of a process, from /proc.
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kib| kib / 1024.0)
        .unwrap_or(0.0)
}
