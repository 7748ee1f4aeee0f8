//! Operating Linkkit: the metrics it exports match the docs, the dashboard and the alerts;
//! promtool accepts a live scrape; a real Prometheus scrapes it; readiness follows the broker;
//! JSON logs let one delivery be followed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use linkkit_core::event::sample;
use linkkit_core::EventType;
use linkkit_tests::{eventually, linkkit_binary, user_agents, FaultProxy, Receiver, TestEnv};
use reqwest::StatusCode;
use serde_json::{json, Value};

const DEADLINE: Duration = Duration::from_secs(40);

fn repo_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

/// Every `linkkit_…` metric family named in a text, with histogram suffixes removed.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find("linkkit_") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        let mut name = &tail[..end];
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(base) = name.strip_suffix(suffix) {
                name = base;
            }
        }
        if name.len() > "linkkit_".len() {
            names.insert(name.to_owned());
        }
        rest = &tail[end..];
    }
    names
}

/// Families actually exported (`# TYPE linkkit_… …` lines of a scrape).
fn exported(scrape: &str) -> BTreeSet<String> {
    scrape
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_whitespace().next())
        .filter(|name| name.starts_with("linkkit_"))
        .map(str::to_owned)
        .collect()
}

async fn scrape(env: &TestEnv) -> String {
    reqwest::get(format!("{}/metrics", env.admin_url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Runs one click through the whole pipeline, so every family has a sample.
async fn deliver_one(env: &TestEnv, receiver: &Receiver) {
    let acme = env.create_workspace("Acme").await;
    acme.api
        .add_endpoint(&receiver.url, &["link.clicked", "link.created"])
        .await;
    acme.api
        .add_link(json!({"destination_url": "https://example.com/m", "slug": "metrics"}))
        .await;
    env.visit("metrics", user_agents::CHROME_WINDOWS).await;
    receiver.wait_for(2, DEADLINE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_dashboard_and_alerts_name_only_exported_metrics_and_promtool_accepts_a_scrape() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    deliver_one(&env, &receiver).await;
    let scrape = eventually("queue depths in the scrape", DEADLINE, || async {
        let text = scrape(&env).await;
        text.contains("linkkit_queue_messages{").then_some(text)
    })
    .await;
    let exported = exported(&scrape);

    let documented = metric_names(&std::fs::read_to_string(repo_file("docs/METRICS.md")).unwrap());
    assert_eq!(
        documented, exported,
        "docs/METRICS.md lists exactly the exported metrics"
    );
    for file in [
        "deploy/grafana/dashboards/linkkit.json",
        "deploy/prometheus/alerts.yml",
    ] {
        let used = metric_names(&std::fs::read_to_string(repo_file(file)).unwrap());
        assert!(!used.is_empty(), "{file} queries Linkkit metrics");
        let unknown: Vec<&String> = used.difference(&exported).collect();
        assert!(
            unknown.is_empty(),
            "{file} queries metrics Linkkit does not export: {unknown:?}"
        );
    }

    let mut promtool = tokio::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool is installed (Debian's prometheus package; scripts/test.sh installs it)");
    use tokio::io::AsyncWriteExt;
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(scrape.as_bytes())
        .await
        .unwrap();
    let checked = promtool.wait_with_output().await.unwrap();
    let lint = format!(
        "{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    assert!(checked.status.success(), "promtool check metrics: {lint}");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_linkkit_and_sees_the_delivery() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    deliver_one(&env, &receiver).await;

    let directory = std::env::temp_dir().join(format!(
        "linkkit-prometheus-{}",
        uuid::Uuid::now_v7().simple()
    ));
    std::fs::create_dir_all(&directory).unwrap();
    let target = env.admin_url.trim_start_matches("http://");
    let config = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: linkkit\n    static_configs:\n      - targets: ['{target}']\n"
    );
    std::fs::write(directory.join("prometheus.yml"), config).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut prometheus = tokio::process::Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            directory.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            directory.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect(
            "prometheus is installed (Debian's prometheus package; scripts/test.sh installs it)",
        );
    let api = format!("http://127.0.0.1:{port}/api/v1");

    eventually("the Linkkit target to be up", DEADLINE, || async {
        let targets: Value = reqwest::get(format!("{api}/targets"))
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let up = targets["data"]["activeTargets"]
            .as_array()?
            .iter()
            .any(|t| t["health"] == "up");
        up.then_some(())
    })
    .await;
    let succeeded = eventually(
        "a delivery in linkkit_delivery_attempts_total",
        DEADLINE,
        || async {
            let query = "sum(linkkit_delivery_attempts_total{outcome=\"succeeded\"})";
            let answer: Value = reqwest::Client::new()
                .get(format!("{api}/query"))
                .query(&[("query", query)])
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            let value: f64 = answer["data"]["result"][0]["value"][1]
                .as_str()?
                .parse()
                .ok()?;
            (value >= 2.0).then_some(value)
        },
    )
    .await;
    assert!(succeeded >= 2.0);
    prometheus.start_kill().unwrap();
    let _ = prometheus.wait().await;
    let _ = std::fs::remove_dir_all(&directory);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_while_the_broker_is_away_and_recovers_by_itself() {
    let proxy = FaultProxy::rabbitmq().await;
    let env = TestEnv::start_with(&[("LINKKIT_AMQP_URL", proxy.url.as_str())]).await;
    let readyz = || async {
        let response = reqwest::get(format!("{}/readyz", env.admin_url))
            .await
            .unwrap();
        (response.status(), response.json::<Value>().await.unwrap())
    };
    eventually("ready", DEADLINE, || async {
        (readyz().await.0 == StatusCode::OK).then_some(())
    })
    .await;
    assert_eq!(
        reqwest::get(format!("{}/healthz", env.admin_url))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    proxy.cut().await;
    let (status, body) = readyz().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["checks"]["broker"], false);
    assert_eq!(body["checks"]["postgres"], true);
    assert_eq!(
        reqwest::get(format!("{}/healthz", env.admin_url))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    proxy.restore();
    eventually("ready again", DEADLINE, || async {
        (readyz().await.0 == StatusCode::OK).then_some(())
    })
    .await;
    let up = eventually("consumers back up", DEADLINE, || async {
        let text = reqwest::get(format!("{}/metrics", env.admin_url))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        let ups = text
            .lines()
            .filter(|l| l.starts_with("linkkit_consumer_up{") && l.ends_with(" 1"))
            .count();
        (ups >= 2).then_some(ups)
    })
    .await;
    assert!(up >= 2);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_let_one_delivery_be_followed_by_its_ids() {
    let env = TestEnv::start_parts(&[], &[linkkit::Service::Api, linkkit::Service::Fanout]).await;
    let receiver = Receiver::start().await;
    let acme = env.create_workspace("Acme").await;
    let endpoint = acme
        .api
        .add_endpoint(&receiver.url, &["link.clicked"])
        .await;
    let sender = tokio::process::Command::new(linkkit_binary())
        .arg("sender")
        .envs(&env.variables)
        .env("LINKKIT_ADMIN_ADDR", "127.0.0.1:0")
        .env("LINKKIT_LOG_FORMAT", "json")
        .env("RUST_LOG", "linkkit_sender=debug,info")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let event = sample(EventType::LinkClicked);
    env.publish_events(&acme.id, std::slice::from_ref(&event))
        .await;
    receiver.wait_for(1, DEADLINE).await;
    tokio::process::Command::new("kill")
        .args(["-TERM", &sender.id().unwrap().to_string()])
        .status()
        .await
        .unwrap();
    let output = sender.wait_with_output().await.unwrap();
    let lines: Vec<Value> = String::from_utf8_lossy(&output.stderr)
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not a JSON log line: {line}"))
        })
        .collect();
    let attempt = lines
        .iter()
        .find(|line| line["fields"]["message"] == "attempt made")
        .unwrap_or_else(|| panic!("no attempt log line in {lines:?}"));
    assert_eq!(attempt["fields"]["status"], 200);
    let span = &attempt["span"];
    assert_eq!(span["event_id"], event.id.as_str());
    assert_eq!(span["endpoint_id"], endpoint["id"]);
    assert!(span["delivery_id"].as_str().unwrap().starts_with("dlv_"));
    assert_eq!(span["attempt"], 1);
    env.stop().await;
}
