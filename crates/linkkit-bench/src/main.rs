//! `linkkit-bench`: Linkkit's figures on this machine, each beside the raw broker's ceiling
//! measured in the same run. Not a test: nothing here asserts a figure. See BENCHMARKS.md for
//! the method and the history.
//!
//! `cargo run --release -p linkkit-bench -- [--runs 3] [SCENARIO…]`

mod broker_shapes;
mod ceiling;
mod cpu;
mod pipeline;
mod receiver;
mod redirect;
mod stats;

use std::io::Write;

use clap::{Parser, ValueEnum};

use crate::stats::spread;

/// mimalloc, not glibc's malloc: allocation and free were a third of the workers' CPU in the
/// throughput profile (many small, short-lived buffers across threads). See BENCHMARKS.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    Ceiling,
    /// The broker alone in the shapes Linkkit uses it (not part of the default run).
    Broker,
    Throughput,
    Latency,
    Fanout,
    Neighbours,
    /// Bad neighbours already failing for a batch of events before the measured one.
    NeighboursSettled,
    Growth,
    Memory,
    Redirect,
    Scaling,
}

#[derive(Debug, Parser)]
#[command(
    about = "Benchmarks of the Linkkit pipeline against the local RabbitMQ, Redis and Postgres"
)]
struct Args {
    /// Scenarios to run (default: all).
    #[arg(value_enum)]
    scenarios: Vec<Scenario>,
    /// Runs of each scenario; figures are min / median / max.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Events of the throughput scenario.
    #[arg(long, default_value_t = 50_000)]
    events: usize,
    /// Jobs waiting in RabbitMQ in the memory scenario.
    #[arg(long, default_value_t = 200_000)]
    backlog: usize,
    /// The scaling scenario also runs on this cluster (a `LINKKIT_AMQP_URL` list, e.g.
    /// `$(scripts/rabbitmq-cluster.sh urls)`), with quorum queues.
    #[arg(long)]
    cluster_urls: Option<String>,
    /// A Linkkit setting for every pipeline scenario, over the production defaults, e.g.
    /// `--set LINKKIT_FANOUT_MAX_QUEUED_JOBS=0` (repeatable): to compare a setting's values.
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = setting)]
    settings: Vec<(String, String)>,
}

fn setting(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if name.starts_with("LINKKIT_") => {
            Ok((name.to_owned(), value.to_owned()))
        }
        _ => Err("expected LINKKIT_NAME=VALUE".into()),
    }
}

fn line(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

fn row(name: &str, unit: &str, values: &[f64]) {
    let (min, median, max) = spread(values);
    line(&format!(
        "| {name} | {min:.1} | {median:.1} | {max:.1} | {unit} |"
    ));
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let all = [
        Scenario::Ceiling,
        Scenario::Throughput,
        Scenario::Latency,
        Scenario::Fanout,
        Scenario::Neighbours,
        Scenario::NeighboursSettled,
        Scenario::Growth,
        Scenario::Memory,
        Scenario::Redirect,
        Scenario::Scaling,
    ];
    let chosen: Vec<Scenario> = if args.scenarios.is_empty() {
        all.to_vec()
    } else {
        args.scenarios.clone()
    };
    let runs = args.runs.max(1);
    for (name, value) in &args.settings {
        line(&format!(
            "linkkit-bench: {name}={value} in every pipeline scenario"
        ));
    }
    pipeline::set_overrides(args.settings.clone());
    line(&format!(
        "linkkit-bench: {} runs per scenario, {} cores",
        runs,
        std::thread::available_parallelism()?.get()
    ));
    line("| figure | min | median | max | unit |");
    line("|---|---|---|---|---|");

    let (mut ceilings, mut ceiling_cpu) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let (rate, cpu) = cpu::measure(ceiling::broker_ceiling(
            linkkit_tests::TestEnv::amqp_url(),
            args.events,
        ))
        .await;
        ceilings.push(rate?);
        ceiling_cpu.push((cpu, args.events));
    }
    row(
        "raw broker ceiling (persistent, confirmed, acked)",
        "msg/s",
        &ceilings,
    );
    let (_, ceiling_median, _) = spread(&ceilings);
    if chosen.iter().any(|s| {
        matches!(
            s,
            Scenario::Ceiling | Scenario::Throughput | Scenario::Redirect
        )
    }) {
        cpu_rows("ceiling", "message", &ceiling_cpu);
    }

    for scenario in chosen {
        match scenario {
            Scenario::Ceiling => {}
            Scenario::Broker => {
                for shape in broker_shapes::SHAPES {
                    let mut uses = Vec::new();
                    let mut rates = Vec::new();
                    for _ in 0..runs {
                        let (rate, cpu) = cpu::measure(broker_shapes::run(
                            linkkit_tests::TestEnv::amqp_url(),
                            args.events,
                            shape,
                        ))
                        .await;
                        rates.push(rate?);
                        uses.push((cpu, args.events));
                    }
                    let label = format!("broker, {}", shape.name);
                    row(&label, "msg/s", &rates);
                    let ratios: Vec<f64> =
                        rates.iter().map(|r| 100.0 * r / ceiling_median).collect();
                    row(&format!("{label}, share of the ceiling"), "%", &ratios);
                    cpu_rows(&label, "message", &uses);
                }
            }
            Scenario::Throughput => {
                // As deployed (every service in one process), then the webhook pipeline
                // alone: publish → fan-out → sender → receiver.
                let shapes = [
                    ("", pipeline::Shape::AsDeployed),
                    (", fan-out and sender only", pipeline::Shape::PipelineOnly),
                    (", published steadily (no backlog)", pipeline::Shape::Steady),
                ];
                for (label, shape) in shapes {
                    let (mut rates, mut uses) = (Vec::new(), Vec::new());
                    for _ in 0..runs {
                        let (rate, cpu) = pipeline::throughput(args.events, shape).await;
                        rates.push(rate);
                        uses.push((cpu, args.events));
                    }
                    row(
                        &format!("throughput: {} events, one endpoint{label}", args.events),
                        "deliveries/s",
                        &rates,
                    );
                    let ratios: Vec<f64> =
                        rates.iter().map(|r| 100.0 * r / ceiling_median).collect();
                    row(
                        &format!("throughput{label} as a share of the broker ceiling"),
                        "%",
                        &ratios,
                    );
                    cpu_rows(&format!("throughput{label}"), "delivery", &uses);
                }
            }
            Scenario::Latency => {
                let mut figures = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
                for _ in 0..runs {
                    for (i, value) in pipeline::latency(1_000, 30).await.into_iter().enumerate() {
                        figures[i].push(value);
                    }
                }
                for (name, values) in ["p50", "p95", "p99", "max"].iter().zip(&figures) {
                    row(
                        &format!("latency at 1,000 events/s for 30 s: {name}"),
                        "ms",
                        values,
                    );
                }
            }
            Scenario::Fanout => {
                let mut times = Vec::new();
                for _ in 0..runs {
                    times.push(pipeline::fan_out(1_000).await * 1000.0);
                }
                row(
                    "fan-out: one event to 1,000 endpoints, last delivery",
                    "ms",
                    &times,
                );
            }
            Scenario::Neighbours => neighbours(runs, pipeline::Onset::Now).await,
            Scenario::NeighboursSettled => neighbours(runs, pipeline::Onset::BatchBefore).await,
            Scenario::Growth => {
                // Each run measures every size in turn, so a slow spell of the machine falls on
                // all sizes alike rather than on the runs of one.
                const SIZES: [usize; 3] = [10, 1_000, 10_000];
                let mut rates = vec![Vec::new(); SIZES.len()];
                for _ in 0..runs {
                    for (endpoints, rates) in SIZES.iter().zip(&mut rates) {
                        rates.push(pipeline::growth(*endpoints, 10_000).await);
                    }
                }
                for (endpoints, rates) in SIZES.iter().zip(&rates) {
                    row(
                        &format!(
                            "cost growth: {endpoints} endpoints in the workspace, one subscribed"
                        ),
                        "deliveries/s",
                        rates,
                    );
                }
            }
            Scenario::Memory => {
                let (fanout, sender, notes) = pipeline::memory(args.backlog).await;
                row(
                    &format!("peak RSS, fan-out process, {} jobs backlog", args.backlog),
                    "MiB",
                    &[fanout],
                );
                row(
                    &format!("peak RSS, sender process, {} jobs backlog", args.backlog),
                    "MiB",
                    &[sender],
                );
                for note in notes {
                    line(&format!("|   {note} | | | | |"));
                }
            }
            Scenario::Scaling => {
                // Events per run: enough for a steady state, few enough for 3 runs of each shape.
                let events = args.events.min(20_000);
                let single: &[(&str, &str)] = &[];
                let cluster_settings = args
                    .cluster_urls
                    .as_deref()
                    .map(|urls| [("LINKKIT_AMQP_URL", urls), ("LINKKIT_QUEUE_TYPE", "quorum")]);
                let shapes = [(1, 1), (1, 2), (1, 4), (2, 1), (2, 2), (2, 4)];
                let mut setups: Vec<(&str, &[(&str, &str)])> = vec![("one node", single)];
                if let Some(settings) = &cluster_settings {
                    setups.push(("3-node cluster, quorum queues", settings));
                }
                for (setup, extra) in setups {
                    for (fanouts, senders) in shapes {
                        let mut rates = Vec::new();
                        for _ in 0..runs {
                            rates.push(pipeline::scaling(events, fanouts, senders, extra).await);
                        }
                        row(
                            &format!(
                                "scaling, {setup}: {fanouts} fan-out + {senders} sender processes, {events} events"
                            ),
                            "deliveries/s",
                            &rates,
                        );
                    }
                }
            }
            Scenario::Redirect => {
                for figure in redirect::run(runs).await? {
                    row(&figure.name, &figure.unit, &figure.values);
                }
            }
        }
    }
    if std::env::var("LINKKIT_BENCH_METRICS").is_ok() {
        dump_metrics();
    }
    Ok(())
}

/// The bad-neighbours rows: healthy endpoints' rate, p99 and CPU split, all healthy and with
/// 10% bad, in pairs run one after the other.
async fn neighbours(runs: usize, onset: pipeline::Onset) {
    const EVENTS: usize = 200;
    const BAD: usize = 10;
    let (mut clean, mut clean_p99, mut clean_cpu) = (Vec::new(), Vec::new(), Vec::new());
    let (mut dirty, mut dirty_p99, mut dirty_cpu) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        for (bad, rates, p99s, uses) in [
            (0, &mut clean, &mut clean_p99, &mut clean_cpu),
            (BAD, &mut dirty, &mut dirty_p99, &mut dirty_cpu),
        ] {
            let healthy = 100 - bad;
            let (rate, p99, cpu) = pipeline::neighbours(bad, EVENTS, onset).await;
            rates.push(rate / healthy as f64);
            p99s.push(p99);
            uses.push((cpu, healthy * EVENTS));
        }
    }
    let (all, some) = match onset {
        pipeline::Onset::Now => ("all healthy", "10% bad"),
        pipeline::Onset::BatchBefore => ("settled, all healthy", "settled, 10% bad"),
    };
    let costs: Vec<f64> = clean
        .iter()
        .zip(&dirty)
        .map(|(clean, dirty)| 100.0 * (1.0 - dirty / clean))
        .collect();
    row(
        &format!("{all}: deliveries/s per endpoint (100 endpoints)"),
        "deliveries/s",
        &clean,
    );
    row(&format!("{all}: p99 lag"), "ms", &clean_p99);
    cpu_rows(all, "delivery", &clean_cpu);
    row(
        &format!("{some} (5 answer 500, 5 hang): healthy deliveries/s per endpoint"),
        "deliveries/s",
        &dirty,
    );
    row(&format!("{some}: healthy p99 lag"), "ms", &dirty_p99);
    cpu_rows(some, "healthy delivery", &dirty_cpu);
    row(
        &format!("{some}: cost to the healthy, per pair of runs"),
        "%",
        &costs,
    );
    // One pair's cost moves by tens of points, so its median over many invocations is what
    // says something: each pair's, in run order, lets those be pooled.
    let each: Vec<String> = costs.iter().map(|cost| format!("{cost:.1}%")).collect();
    line(&format!(
        "|   {some}: each pair's cost, in run order: {} | | | | |",
        each.join(", ")
    ));
}

/// One row per part of the machine that did anything: the microseconds of one core it spent
/// per `item` over the measured interval, then all of them but idle.
fn cpu_rows(label: &str, item: &str, uses: &[(cpu::CpuUse, usize)]) {
    for (part, values) in cpu::micros_by_part(uses) {
        row(
            &format!("{label}: CPU per {item}, {}", part.name()),
            "µs",
            &values,
        );
    }
    let busy: Vec<f64> = uses.iter().map(|(u, n)| u.busy_micros_per(*n)).collect();
    row(
        &format!("{label}: CPU per {item}, all but idle"),
        "µs",
        &busy,
    );
}

/// The process's own Linkkit metrics (deferrals, duplicates, fan-out outcomes…), to see where
/// a scenario spent its time (`LINKKIT_BENCH_METRICS=1`).
fn dump_metrics() {
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&prometheus::gather())
        .unwrap_or_default();
    for metric in text
        .lines()
        .filter(|l| l.starts_with("linkkit_") && !l.contains("_bucket") && !l.ends_with(" 0"))
    {
        line(&format!("    {metric}"));
    }
}
