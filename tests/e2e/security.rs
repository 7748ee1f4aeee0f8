//! Secure by default: signatures any Standard Webhooks library accepts, secret rotation, API
//! keys, tenant isolation, no requests to private networks, hostile input, rate limits.

use std::path::PathBuf;
use std::time::Duration;

use linkkit_core::event::sample;
use linkkit_core::EventType;
use linkkit_tests::{eventually, linkkit_binary, Received, Receiver, TestEnv, TestWorkspace};
use reqwest::StatusCode;
use serde_json::{json, Value};

const DEADLINE: Duration = Duration::from_secs(30);

/// The Python of `.venv` (made by `scripts/test-deps.sh`), or `LINKKIT_TEST_PYTHON`.
fn python() -> PathBuf {
    if let Ok(python) = std::env::var("LINKKIT_TEST_PYTHON") {
        return python.into();
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = root.join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run ./scripts/test-deps.sh (./scripts/test.sh does)",
        python.display()
    );
    python
}

/// Verifies received webhooks with the official `standardwebhooks` Python package.
async fn verified_by_standard_webhooks(
    secret: &str,
    received: &[Received],
) -> Result<String, String> {
    let requests: Vec<Value> = received
        .iter()
        .map(|r| {
            let headers: serde_json::Map<String, Value> =
                ["webhook-id", "webhook-timestamp", "webhook-signature"]
                    .iter()
                    .map(|name| ((*name).to_owned(), Value::from(r.header(name))))
                    .collect();
            json!({"headers": headers, "body": String::from_utf8(r.body.to_vec()).unwrap()})
        })
        .collect();
    let file = std::env::temp_dir().join(format!(
        "linkkit-webhooks-{}.json",
        uuid::Uuid::now_v7().simple()
    ));
    std::fs::write(&file, serde_json::to_vec(&requests).unwrap()).unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/verify_webhooks.py");
    let output = tokio::process::Command::new(python())
        .arg(&script)
        .arg(secret)
        .arg(&file)
        .output()
        .await
        .unwrap();
    let _ = std::fs::remove_file(&file);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

async fn add_endpoint(workspace: &TestWorkspace, url: &str) -> (Value, String) {
    let endpoint = workspace
        .api
        .add_endpoint(url, &["link.clicked", "link.created"])
        .await;
    let secret = endpoint["secret"].as_str().unwrap().to_owned();
    (endpoint, secret)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_standard_webhooks_library_verifies_real_deliveries() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    let acme = env.create_workspace("Acme").await;
    let (_, secret) = add_endpoint(&acme, &receiver.url).await;
    let decoded = base64_len(&secret);
    assert!(
        (24..=64).contains(&decoded),
        "a secret holds 24-64 bytes, this one {decoded}"
    );
    acme.api.add_link(json!({"destination_url": "https://example.com/ünïcode?q=a b", "campaign": "Q4 \"quoted\""})).await;
    env.publish_events(&acme.id, &[sample(EventType::LinkClicked)])
        .await;
    let received = receiver.wait_for(2, DEADLINE).await;

    let verdict = verified_by_standard_webhooks(&secret, &received).await;
    assert!(verdict.is_ok(), "{verdict:?}");
    assert_eq!(
        verdict
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("ok "))
            .count(),
        2
    );
    // And a wrong secret fails with the same library, so the check is real.
    let stranger = linkkit_core::signing::WebhookSecret::generate().expose();
    assert!(verified_by_standard_webhooks(&stranger, &received)
        .await
        .is_err());
    env.stop().await;
}

fn base64_len(secret: &str) -> usize {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .unwrap()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_signs_beside_the_old_one_for_a_day_then_alone() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    let acme = env.create_workspace("Acme").await;
    let (endpoint, old_secret) = add_endpoint(&acme, &receiver.url).await;
    let id = endpoint["id"].as_str().unwrap();

    let (status, rotated) = acme
        .api
        .post(&format!("/webhooks/{id}/rotate-secret"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, old_secret);
    let (_, current) = acme.api.get(&format!("/webhooks/{id}/secret")).await;
    assert_eq!(current["secret"], new_secret.as_str());

    env.publish_events(&acme.id, &[sample(EventType::LinkClicked)])
        .await;
    let during = receiver.wait_for(1, DEADLINE).await;
    assert_eq!(
        during[0].header("webhook-signature").split(' ').count(),
        2,
        "two v1, values during the overlap"
    );
    assert!(verified_by_standard_webhooks(&old_secret, &during)
        .await
        .is_ok());
    assert!(verified_by_standard_webhooks(&new_secret, &during)
        .await
        .is_ok());

    // A day later (the overlap's end moved to the past), only the new secret signs.
    sqlx::query("UPDATE endpoints SET previous_secret_expires_at = now() - interval '1 second' WHERE id = $1")
        .bind(id)
        .execute(&env.pool)
        .await
        .unwrap();
    env.publish_events(&acme.id, &[sample(EventType::LinkClicked)])
        .await;
    let after = receiver.wait_for(2, DEADLINE).await;
    let last = std::slice::from_ref(&after[1]);
    assert_eq!(last[0].header("webhook-signature").split(' ').count(), 1);
    assert!(verified_by_standard_webhooks(&new_secret, last)
        .await
        .is_ok());
    assert!(verified_by_standard_webhooks(&old_secret, last)
        .await
        .is_err());
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_a_log_line() {
    let env = TestEnv::start_parts(&[], &[linkkit::Service::Api, linkkit::Service::Fanout]).await;
    let receiver = Receiver::start().await;
    let acme = env.create_workspace("Acme").await;
    let (endpoint, secret) = add_endpoint(&acme, &receiver.url).await;
    let mut sender = tokio::process::Command::new(linkkit_binary());
    sender
        .arg("sender")
        .envs(&env.variables)
        .env("LINKKIT_ADMIN_ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "debug")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true);
    let sender = sender.spawn().unwrap();
    receiver.respond_next(&[500]);
    env.publish_events(&acme.id, &[sample(EventType::LinkClicked)])
        .await;
    receiver.wait_for(2, DEADLINE).await;
    let (_, rotated) = acme
        .api
        .post(
            &format!(
                "/webhooks/{}/rotate-secret",
                endpoint["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
    env.publish_events(&acme.id, &[sample(EventType::LinkClicked)])
        .await;
    receiver.wait_for(3, DEADLINE).await;

    let pid = sender.id().unwrap().to_string();
    tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    let output = sender.wait_with_output().await.unwrap();
    let logs = String::from_utf8_lossy(&output.stderr);
    assert!(
        logs.contains("DEBUG") || logs.contains("INFO"),
        "debug logging was on"
    );
    for secret in [secret.as_str(), rotated["secret"].as_str().unwrap()] {
        let key = secret.trim_start_matches("whsec_");
        assert!(!logs.contains(key), "a secret appeared in the logs");
    }
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_are_stored_hashed_several_per_workspace_and_revocation_is_immediate() {
    let env = TestEnv::start().await;
    let acme = env.create_workspace("Acme").await;
    let cli = |args: &[&str]| {
        let mut command = std::process::Command::new(linkkit_binary());
        command.args(args).envs(&env.variables);
        command
    };
    let created = cli(&["key", "create", "--workspace", &acme.id, "--name", "ci"])
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let created: Value = serde_json::from_slice(&created.stdout).unwrap();
    let second_key = created["api_key"].as_str().unwrap().to_owned();
    let key_id = created["key_id"].as_str().unwrap().to_owned();
    assert!(second_key.starts_with("lk_"));
    assert_eq!(
        acme.api.with_key(&second_key).get("/links").await.0,
        StatusCode::OK
    );

    let listed = cli(&["key", "list", "--workspace", &acme.id, "--json"])
        .output()
        .unwrap();
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert_eq!(listed.lines().count(), 2, "{listed}");
    assert!(
        !listed.contains(&second_key[7..]),
        "a listing never shows a key"
    );

    let stored: Vec<(String,)> = sqlx::query_as("SELECT key_hash FROM api_keys")
        .fetch_all(&env.pool)
        .await
        .unwrap();
    for (hash,) in &stored {
        assert_eq!(hash.len(), 64);
        assert!(!hash.contains(&second_key[3..]) && !hash.contains(&acme.key[3..]));
    }

    let revoked = cli(&["key", "revoke", &key_id]).output().unwrap();
    assert!(revoked.status.success());
    let (status, body) = acme.api.with_key(&second_key).get("/links").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(
        acme.api.get("/links").await.0,
        StatusCode::OK,
        "the other key still works"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_workspace_gets_404_for_deliveries_and_every_sub_resource() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    let a = env.create_workspace("A").await;
    let b = env.create_workspace("B").await;
    let (endpoint, _) = add_endpoint(&a, &receiver.url).await;
    let endpoint_id = endpoint["id"].as_str().unwrap();
    env.publish_events(&a.id, &[sample(EventType::LinkClicked)])
        .await;
    receiver.wait_for(1, DEADLINE).await;
    let delivery = eventually("A's delivery", DEADLINE, || async {
        let (_, list) = a
            .api
            .get(&format!("/webhooks/{endpoint_id}/deliveries"))
            .await;
        list["data"].as_array().and_then(|d| d.first().cloned())
    })
    .await;
    let delivery_id = delivery["id"].as_str().unwrap();

    for (method, path) in [
        ("GET", format!("/deliveries/{delivery_id}")),
        ("POST", format!("/deliveries/{delivery_id}/resend")),
        ("GET", format!("/webhooks/{endpoint_id}/deliveries")),
        ("POST", format!("/webhooks/{endpoint_id}/replay")),
        ("POST", format!("/webhooks/{endpoint_id}/test")),
        ("GET", format!("/webhooks/{endpoint_id}/secret")),
        ("POST", format!("/webhooks/{endpoint_id}/rotate-secret")),
    ] {
        let (status, body) = match method {
            "GET" => b.api.get(&path).await,
            _ => b.api.post(&path, json!({})).await,
        };
        assert_eq!(status, StatusCode::NOT_FOUND, "B {method} {path}: {body}");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        receiver.received().len(),
        1,
        "B's attempts sent nothing to A's endpoint"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_resolves_to_a_private_address_is_never_contacted() {
    let env = TestEnv::start_with(&[
        ("LINKKIT_ALLOW_PRIVATE_TARGETS", "false"),
        ("LINKKIT_RETRY_SCHEDULE", ""),
    ])
    .await;
    let receiver = Receiver::start().await;
    let acme = env.create_workspace("Acme").await;
    let (endpoint, _) = add_endpoint(&acme, "https://hooks.example.com/linkkit").await;
    let id = endpoint["id"].as_str().unwrap();
    // As if DNS changed after creation: the stored URL now points at loopback, by name and by
    // address.
    let port = receiver
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    for url in [
        format!("http://localhost:{port}/webhooks"),
        format!("http://127.0.0.1:{port}/webhooks"),
        format!("http://[::ffff:127.0.0.1]:{port}/webhooks"),
    ] {
        sqlx::query("UPDATE endpoints SET url = $2 WHERE id = $1")
            .bind(id)
            .bind(&url)
            .execute(&env.pool)
            .await
            .unwrap();
        env.publish_events(&acme.id, &[sample(EventType::LinkClicked)])
            .await;
    }
    let dead = eventually("three refused deliveries", DEADLINE, || async {
        let (_, list) = acme
            .api
            .get(&format!("/webhooks/{id}/deliveries?status=dead"))
            .await;
        let list = list["data"].as_array().cloned().unwrap_or_default();
        (list.len() == 3).then_some(list)
    })
    .await;
    for delivery in dead {
        let (_, detail) = acme
            .api
            .get(&format!("/deliveries/{}", delivery["id"].as_str().unwrap()))
            .await;
        let error = detail["attempts"][0]["error"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            error.contains("non-public") || error.contains("not a public address"),
            "{error}"
        );
        assert_eq!(detail["attempts"][0]["status_code"], Value::Null);
    }
    assert!(
        receiver.received().is_empty(),
        "nothing reached the private address"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allow_listed_range_may_be_contacted_while_everything_else_private_stays_refused() {
    let env = TestEnv::start_with(&[
        ("LINKKIT_ALLOW_PRIVATE_TARGETS", "false"),
        ("LINKKIT_ALLOWED_TARGET_CIDRS", "127.0.0.1/32"),
    ])
    .await;
    let receiver = Receiver::start().await;
    let acme = env.create_workspace("Acme").await;
    add_endpoint(&acme, &receiver.url).await;
    let (status, refused) = acme
        .api
        .post(
            "/webhooks",
            json!({"url": "http://10.0.0.1/x", "events": ["link.clicked"]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    env.publish_events(&acme.id, &[sample(EventType::LinkClicked)])
        .await;
    receiver.wait_for(1, DEADLINE).await;
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_never_followed_and_response_bodies_are_truncated() {
    let env = TestEnv::start_with(&[("LINKKIT_RETRY_SCHEDULE", "")]).await;
    let (redirecting, elsewhere) = (Receiver::start().await, Receiver::start().await);
    redirecting.respond_otherwise(307);
    redirecting.answer_with_header("location", &elsewhere.url);
    redirecting.answer_with_body(&"x".repeat(100_000));
    let acme = env.create_workspace("Acme").await;
    let (endpoint, _) = add_endpoint(&acme, &redirecting.url).await;
    env.publish_events(&acme.id, &[sample(EventType::LinkClicked)])
        .await;
    let id = endpoint["id"].as_str().unwrap();
    let dead = eventually("the delivery to be dead", DEADLINE, || async {
        let (_, list) = acme
            .api
            .get(&format!("/webhooks/{id}/deliveries?status=dead"))
            .await;
        list["data"].as_array().and_then(|d| d.first().cloned())
    })
    .await;
    let (_, detail) = acme
        .api
        .get(&format!("/deliveries/{}", dead["id"].as_str().unwrap()))
        .await;
    assert_eq!(detail["attempts"][0]["status_code"], 307);
    assert_eq!(
        detail["attempts"][0]["response_body"]
            .as_str()
            .unwrap()
            .len(),
        1024
    );
    assert!(
        elsewhere.received().is_empty(),
        "the redirect was not followed"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_over_its_rate_limit_gets_429_with_retry_after_and_others_are_unaffected() {
    let env = TestEnv::start_with(&[("LINKKIT_API_RATE_LIMIT", "5")]).await;
    let busy = env.create_workspace("Busy").await;
    let calm = env.create_workspace("Calm").await;
    let requests = (0..20).map(|_| busy.api.get("/links"));
    let answers = futures_util::future::join_all(requests).await;
    let limited: Vec<&(StatusCode, Value)> = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert!(
        !limited.is_empty(),
        "20 requests at once exceed 5 per second"
    );
    assert_eq!(limited[0].1["error"]["code"], "rate_limited");
    let raw = reqwest::Client::new();
    let retry_after = loop {
        let response = raw
            .get(format!("{}/api/v1/links", env.api_url))
            .bearer_auth(&busy.key)
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            break response.headers()["retry-after"]
                .to_str()
                .unwrap()
                .to_owned();
        }
    };
    assert_eq!(retry_after, "1");
    assert_eq!(
        calm.api.get("/links").await.0,
        StatusCode::OK,
        "another key has its own budget"
    );
    env.stop().await;
}
