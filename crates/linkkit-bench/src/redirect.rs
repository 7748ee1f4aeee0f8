//! The redirect under load, with nginx answering `return 302` on the same machine as the
//! ceiling: an open-throttle 10 s burst (wrk), then fixed-rate latency at 2,000 requests/s
//! (our own open-loop generator: requests start on schedule, latency counts from the scheduled
//! moment, so a stall is not hidden). Every click of the burst must be delivered afterwards.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use linkkit::Service;
use linkkit_tests::TestEnv;
use serde_json::json;
use tokio::process::Command;

use crate::receiver::{Behaviour, BenchReceiver};
use crate::stats::percentile;

pub struct Figure {
    pub name: String,
    pub unit: String,
    pub values: Vec<f64>,
}

fn figure(name: &str, unit: &str, values: Vec<f64>) -> Figure {
    Figure {
        name: name.into(),
        unit: unit.into(),
        values,
    }
}

pub async fn run(runs: usize) -> anyhow::Result<Vec<Figure>> {
    for tool in ["wrk", "nginx"] {
        anyhow::ensure!(
            which(tool),
            "{tool} is not installed: run scripts/bench.sh (it installs wrk and nginx-light)"
        );
    }
    let nginx = Nginx::start().await?;
    let env = TestEnv::start_parts(&[("LINKKIT_API_RATE_LIMIT", "0")], &[Service::All]).await;
    let receiver = BenchReceiver::start().await;
    let workspace = env.create_workspace("Bench").await;
    workspace
        .api
        .add_endpoint(
            &receiver.url("clicks", Behaviour::Healthy),
            &["link.clicked"],
        )
        .await;
    workspace
        .api
        .add_link(json!({"destination_url": "https://example.com/bench", "slug": "bench"}))
        .await;
    let ours = format!("{}/bench", env.redirect_url);

    let (mut our_burst, mut nginx_burst, mut delivered_share, mut drain_rate) =
        (vec![], vec![], vec![], vec![]);
    let (mut our_p50, mut our_p99, mut nginx_p50, mut nginx_p99) = (vec![], vec![], vec![], vec![]);
    let mut clicks_so_far = receiver.delivered();
    for _ in 0..runs {
        let started = Instant::now();
        let (rate, requests) = wrk(&ours, 10).await?;
        our_burst.push(rate);
        // Every click of the burst is buffered and then delivered (the buffer is far larger).
        let expected = clicks_so_far + requests;
        let all_delivered = receiver.wait_for(expected, Duration::from_secs(600)).await;
        let drained = started.elapsed().as_secs_f64();
        delivered_share
            .push(100.0 * (receiver.delivered() - clicks_so_far) as f64 / requests as f64);
        drain_rate.push(requests as f64 / drained);
        anyhow::ensure!(all_delivered, "clicks of the burst went missing");
        clicks_so_far = receiver.delivered();
        nginx_burst.push(wrk(&nginx.url, 10).await?.0);

        let (p50, p99) = fixed_rate(&ours, 2_000, 10).await;
        our_p50.push(p50);
        our_p99.push(p99);
        clicks_so_far += 2_000 * 10;
        receiver
            .wait_for(clicks_so_far, Duration::from_secs(600))
            .await;
        clicks_so_far = receiver.delivered();
        let (p50, p99) = fixed_rate(&nginx.url, 2_000, 10).await;
        nginx_p50.push(p50);
        nginx_p99.push(p99);
    }
    let share: Vec<f64> = our_burst
        .iter()
        .zip(&nginx_burst)
        .map(|(o, n)| 100.0 * o / n)
        .collect();
    env.stop().await;
    drop(nginx);
    Ok(vec![
        figure(
            "redirect burst (wrk, 10 s, 64 connections)",
            "requests/s",
            our_burst,
        ),
        figure(
            "nginx `return 302` burst, same load",
            "requests/s",
            nginx_burst,
        ),
        figure("redirect burst as a share of nginx", "%", share),
        figure(
            "clicks of the burst delivered afterwards",
            "%",
            delivered_share,
        ),
        figure(
            "clicks published and delivered per second over the burst and its drain",
            "clicks/s",
            drain_rate,
        ),
        figure("redirect at 2,000 requests/s: p50", "ms", our_p50),
        figure("redirect at 2,000 requests/s: p99", "ms", our_p99),
        figure("nginx at 2,000 requests/s: p50", "ms", nginx_p50),
        figure("nginx at 2,000 requests/s: p99", "ms", nginx_p99),
    ])
}

fn which(tool: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Requests/s and total requests of a wrk run.
async fn wrk(url: &str, seconds: u64) -> anyhow::Result<(f64, usize)> {
    let output = Command::new("wrk")
        .args(["-t2", "-c64", &format!("-d{seconds}s"), url])
        .output()
        .await?;
    let text = String::from_utf8_lossy(&output.stdout);
    let rate = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .ok_or_else(|| anyhow::anyhow!("unexpected wrk output: {text}"))?;
    let requests = text
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse::<usize>().ok())
        .ok_or_else(|| anyhow::anyhow!("unexpected wrk output: {text}"))?;
    Ok((rate, requests))
}

/// p50 and p99 latency (ms) at a fixed request rate, counted from each request's scheduled start.
async fn fixed_rate(url: &str, rate: u64, seconds: u64) -> (f64, f64) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(256)
        .build()
        .expect("a client");
    let latencies = Arc::new(Mutex::new(Vec::with_capacity((rate * seconds) as usize)));
    let start = tokio::time::Instant::now() + Duration::from_millis(50);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..rate * seconds {
        let scheduled = start + Duration::from_micros(i * 1_000_000 / rate);
        let (client, url, latencies) = (client.clone(), url.to_owned(), latencies.clone());
        tasks.spawn(async move {
            tokio::time::sleep_until(scheduled).await;
            if client.get(&url).send().await.is_ok() {
                let elapsed = scheduled.elapsed().as_secs_f64() * 1000.0;
                latencies.lock().unwrap().push(elapsed);
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let mut latencies = latencies.lock().unwrap().clone();
    latencies.sort_by(|a, b| a.total_cmp(b));
    (percentile(&latencies, 50.0), percentile(&latencies, 99.0))
}

/// nginx answering every request with `302`, on a free port, for as long as this lives.
struct Nginx {
    url: String,
    child: tokio::process::Child,
    directory: std::path::PathBuf,
}

impl Nginx {
    async fn start() -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let directory =
            std::env::temp_dir().join(format!("linkkit-nginx-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(directory.join("logs"))?;
        let config = format!(
            "worker_processes 2;\npid {dir}/nginx.pid;\nerror_log {dir}/logs/error.log;\nevents {{ worker_connections 1024; }}\nhttp {{\n  access_log off;\n  client_body_temp_path {dir};\n  server {{\n    listen 127.0.0.1:{port};\n    location / {{ return 302 https://example.com/bench; }}\n  }}\n}}\n",
            dir = directory.display()
        );
        std::fs::write(directory.join("nginx.conf"), config)?;
        let child = Command::new("nginx")
            .args([
                "-p",
                &directory.display().to_string(),
                "-c",
                &directory.join("nginx.conf").display().to_string(),
                "-g",
                "daemon off;",
            ])
            .kill_on_drop(true)
            .spawn()?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        Ok(Self {
            url: format!("http://127.0.0.1:{port}/bench"),
            child,
            directory,
        })
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}
