//! For integrators: the OpenAPI document served by a live API, the event stream, `linkkit
//! listen` forwarding real events to a local receiver, and the CLI client against a real API.
//! The binary runs as a child process, exactly as a developer would run it.

use std::process::Stdio;
use std::time::Duration;

use linkkit_core::signing::WebhookSecret;
use linkkit_tests::{eventually, linkkit_binary, Receiver, TestEnv, TestWorkspace};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

const DEADLINE: Duration = Duration::from_secs(30);

/// `linkkit <args>` as a client of `env`'s API with `workspace`'s key.
fn cli(env: &TestEnv, workspace: &TestWorkspace, args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(linkkit_binary());
    command
        .args(args)
        .env("LINKKIT_API_URL", &env.api_url)
        .env("LINKKIT_API_KEY", &workspace.key)
        .env("RUST_LOG", "warn")
        .kill_on_drop(true);
    command
}

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|_| panic!("JSON on stdout, got {:?} / {:?}", self.stdout, self.stderr))
    }
}

async fn run(env: &TestEnv, workspace: &TestWorkspace, args: &[&str]) -> Run {
    let output = cli(env, workspace, args)
        .output()
        .await
        .expect("the binary runs");
    Run {
        ok: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

async fn succeed(env: &TestEnv, workspace: &TestWorkspace, args: &[&str]) -> Run {
    let run = run(env, workspace, args).await;
    assert!(
        run.ok,
        "linkkit {args:?} failed: {}{}",
        run.stdout, run.stderr
    );
    run
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_forwards_the_workspaces_events_signed_to_a_local_url_and_nothing_else() {
    let env = TestEnv::start().await;
    let acme = env.create_workspace("Acme").await;
    let other = env.create_workspace("Other").await;
    let receiver = Receiver::start().await;
    let secret = WebhookSecret::generate().expose();

    let mut listen = cli(
        &env,
        &acme,
        &[
            "listen",
            "--forward-to",
            &receiver.url,
            "--events",
            "link.clicked,link.created",
            "--secret",
            &secret,
        ],
    )
    .stdout(Stdio::piped())
    .spawn()
    .expect("linkkit listen starts");
    let mut lines = BufReader::new(listen.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    tokio::time::timeout(DEADLINE, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let ready = line.starts_with("Ready!");
            printed.push(line);
            if ready {
                return;
            }
        }
        panic!("linkkit listen ended before it was ready: {printed:?}");
    })
    .await
    .expect("linkkit listen is ready within the deadline");
    assert!(
        printed[0].contains(&secret),
        "the secret is printed: {printed:?}"
    );

    // A sample click through `linkkit trigger`, a real link.created, and three events that
    // must not reach the listener: a type it did not ask for, and another workspace's events.
    let triggered = succeed(&env, &acme, &["trigger", "link.clicked", "--json"]).await;
    let clicked_id = triggered.json()["id"].as_str().unwrap().to_owned();
    let (status, _) = acme
        .api
        .post("/events/trigger", json!({"event": "qr.scanned"}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _) = other
        .api
        .post("/events/trigger", json!({"event": "link.clicked"}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    other
        .api
        .add_link(json!({"destination_url": "https://example.com/other"}))
        .await;
    let link = acme
        .api
        .add_link(json!({"destination_url": "https://example.com/product"}))
        .await;

    let received = receiver.wait_for(2, DEADLINE).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let received = if receiver.received().len() > received.len() {
        receiver.received()
    } else {
        received
    };
    assert_eq!(
        received.len(),
        2,
        "only the workspace's chosen events arrive"
    );
    let clicked = received
        .iter()
        .find(|r| r.event_type() == "link.clicked")
        .expect("the sample click arrives");
    let created = received
        .iter()
        .find(|r| r.event_type() == "link.created")
        .expect("the link.created arrives");
    assert_eq!(clicked.header("webhook-id"), clicked_id);
    assert_eq!(clicked.json["data"]["device"], "Mobile");
    assert_eq!(created.json["data"]["link_id"], link["id"]);
    for request in &received {
        assert!(
            request.signature_verifies(&secret),
            "signed with the listen secret"
        );
        assert_eq!(request.header("webhook-id"), request.json["id"]);
        assert_eq!(request.header("content-type"), "application/json");
    }

    // Each forward is printed with the local answer.
    let forwarded = tokio::time::timeout(DEADLINE, async {
        let mut forwarded = Vec::new();
        while forwarded.len() < 2 {
            let line = lines
                .next_line()
                .await
                .unwrap()
                .expect("listen keeps printing");
            if line.contains("→") {
                forwarded.push(line);
            }
        }
        forwarded
    })
    .await
    .expect("both forwards are printed");
    assert!(
        forwarded.iter().all(|line| line.contains("200 OK")),
        "{forwarded:?}"
    );
    assert!(
        forwarded.iter().any(|line| line.contains(&clicked_id)),
        "{forwarded:?}"
    );

    // Stopping the API while a stream is open ends the stream instead of hanging the shutdown.
    tokio::time::timeout(DEADLINE, env.stop())
        .await
        .expect("the API stops with an event stream open");
    listen.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_needs_a_key_and_the_openapi_document_does_not() {
    let env = TestEnv::start().await;
    let acme = env.create_workspace("Acme").await;
    let http = reqwest::Client::new();
    let stream = format!("{}/api/v1/events/stream", env.api_url);

    let anonymous = http.get(&stream).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let bad_type = http
        .get(format!("{stream}?events=link.exploded"))
        .bearer_auth(&acme.key)
        .send()
        .await
        .unwrap();
    assert_eq!(bad_type.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = bad_type.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_events");

    let mut opened = http
        .get(format!("{stream}?events=qr.scanned"))
        .bearer_auth(&acme.key)
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status(), StatusCode::OK);
    assert_eq!(
        opened.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let first = tokio::time::timeout(DEADLINE, opened.chunk())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let first = String::from_utf8_lossy(&first);
    assert!(first.contains("event: ready"), "{first}");
    assert!(first.contains(r#"{"events":["qr.scanned"]}"#), "{first}");
    let (status, _) = acme
        .api
        .post("/events/trigger", json!({"event": "qr.scanned"}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let event = tokio::time::timeout(DEADLINE, async {
        loop {
            let chunk = opened
                .chunk()
                .await
                .unwrap()
                .expect("the stream stays open");
            let text = String::from_utf8_lossy(&chunk).into_owned();
            if text.contains("event: qr.scanned") {
                return text;
            }
        }
    })
    .await
    .expect("the scan arrives on the stream");
    assert!(event.contains("id: evt_"), "{event}");
    drop(opened);

    let document = http
        .get(format!("{}/api/v1/openapi.json", env.api_url))
        .send()
        .await
        .unwrap();
    assert_eq!(document.status(), StatusCode::OK);
    assert_eq!(
        document.text().await.unwrap(),
        linkkit_api::openapi::document_json()
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_client_manages_links_webhooks_and_deliveries_and_replays_with_progress() {
    let env = TestEnv::start().await;
    let acme = env.create_workspace("Acme").await;
    let receiver = Receiver::start().await;
    receiver.respond_otherwise(500);

    // Links.
    let created = succeed(
        &env,
        &acme,
        &[
            "links",
            "create",
            "https://example.com/p",
            "--slug",
            "cli-made",
            "--tag",
            "a",
            "--json",
        ],
    )
    .await
    .json();
    let link_id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["tags"], json!(["a"]));
    let listed = succeed(&env, &acme, &["links", "list"]).await.stdout;
    assert!(listed.starts_with("id "), "a table: {listed}");
    assert!(
        listed.contains("cli-made") && listed.contains(&link_id),
        "{listed}"
    );
    let updated = succeed(
        &env,
        &acme,
        &[
            "links",
            "update",
            &link_id,
            "--segment",
            "Q4",
            "--clear-tags",
            "--json",
        ],
    )
    .await
    .json();
    assert_eq!(updated["segment"], "Q4");
    assert_eq!(updated["tags"], json!([]));
    let shown = succeed(&env, &acme, &["links", "get", &link_id])
        .await
        .stdout;
    assert!(
        shown
            .lines()
            .any(|line| line.starts_with("segment ") && line.ends_with(" Q4")),
        "{shown}"
    );

    // The API's errors, in one line.
    let missing = run(&env, &acme, &["links", "get", "lnk_nope"]).await;
    assert!(!missing.ok);
    assert_eq!(
        missing.stderr.trim(),
        "error: no such link (not_found, HTTP 404)"
    );
    let refused = run(&env, &acme, &["links", "create", "ftp://example.com/"]).await;
    assert!(!refused.ok);
    assert!(
        refused.stderr.contains("invalid_destination_url, HTTP 422"),
        "{}",
        refused.stderr
    );

    // Webhooks: add, test into a failing receiver until the delivery is dead, then replay.
    let endpoint = succeed(
        &env,
        &acme,
        &[
            "webhooks",
            "add",
            &receiver.url,
            "--events",
            "link.clicked",
            "--json",
        ],
    )
    .await
    .json();
    let endpoint_id = endpoint["id"].as_str().unwrap().to_owned();
    assert!(endpoint["secret"].as_str().unwrap().starts_with("whsec_"));
    let secret = succeed(&env, &acme, &["webhooks", "secret", &endpoint_id, "--json"])
        .await
        .json();
    assert_eq!(secret["secret"], endpoint["secret"]);
    let test = succeed(
        &env,
        &acme,
        &[
            "webhooks",
            "test",
            &endpoint_id,
            "--event",
            "link.clicked",
            "--json",
        ],
    )
    .await
    .json();
    let delivery_id = test["id"].as_str().unwrap().to_owned();
    eventually("the delivery to die", DEADLINE, || async {
        let (_, delivery) = acme.api.get(&format!("/deliveries/{delivery_id}")).await;
        (delivery["status"] == "dead").then_some(())
    })
    .await;
    let dead = succeed(
        &env,
        &acme,
        &[
            "deliveries",
            "list",
            "--endpoint",
            &endpoint_id,
            "--status",
            "dead",
            "--json",
        ],
    )
    .await
    .json();
    assert_eq!(dead["data"][0]["id"], delivery_id.as_str());

    receiver.respond_otherwise(200);
    let replayed = succeed(
        &env,
        &acme,
        &["webhooks", "replay", &endpoint_id, "--wait", "--json"],
    )
    .await
    .json();
    assert_eq!(replayed, json!({"count": 1, "succeeded": 1, "failed": 0}));
    let shown = succeed(&env, &acme, &["deliveries", "show", &delivery_id])
        .await
        .stdout;
    assert!(shown.contains("succeeded"), "{shown}");
    assert!(
        shown.contains("attempt") && shown.contains("500"),
        "every attempt: {shown}"
    );
    let again = succeed(&env, &acme, &["webhooks", "replay", &endpoint_id])
        .await
        .stdout;
    assert!(again.contains("replayed 0 dead deliveries"), "{again}");

    let disabled = succeed(
        &env,
        &acme,
        &["webhooks", "update", &endpoint_id, "--disable", "--json"],
    )
    .await
    .json();
    assert_eq!(disabled["enabled"], false);
    let rotated = succeed(&env, &acme, &["webhooks", "rotate-secret", &endpoint_id])
        .await
        .stdout;
    assert!(rotated.contains("previous_secret_expires_at"), "{rotated}");
    succeed(&env, &acme, &["webhooks", "delete", &endpoint_id]).await;
    let deleted = succeed(&env, &acme, &["links", "delete", &link_id])
        .await
        .stdout;
    assert_eq!(deleted.trim(), format!("deleted {link_id}"));
    let (status, _) = acme.api.get(&format!("/links/{link_id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    env.stop().await;
}

/// The repository's root.
fn repo() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A receiver of docs/examples started on a free port with `secret`; → (process, its URL, a
/// folder to remove afterwards).
async fn documented_receiver(
    example: &str,
    secret: &str,
) -> (tokio::process::Child, String, Option<std::path::PathBuf>) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let source = repo().join("docs/examples").join(example);
    let mut scratch = None;
    let mut command = if example.ends_with(".py") {
        let python = repo().join(".venv/bin/python");
        assert!(python.exists(), "run ./scripts/test-deps.sh first");
        let mut command = tokio::process::Command::new(python);
        command.arg(&source);
        command
    } else {
        // ES modules find packages next to the script: run a copy beside .node/node_modules.
        let modules = repo().join(".node/node_modules");
        assert!(modules.exists(), "run ./scripts/test-deps.sh first");
        let dir = std::env::temp_dir().join(format!("linkkit-node-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(&source, dir.join(example)).unwrap();
        std::os::unix::fs::symlink(&modules, dir.join("node_modules")).unwrap();
        let mut command = tokio::process::Command::new("node");
        command.arg(dir.join(example));
        scratch = Some(dir);
        command
    };
    let child = command
        .arg(port.to_string())
        .env("LINKKIT_WEBHOOK_SECRET", secret)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the example receiver starts");
    let url = format!("http://127.0.0.1:{port}/webhooks");
    eventually("the example receiver to listen", DEADLINE, || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()
            .map(|_| ())
    })
    .await;
    (child, url, scratch)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_python_and_node_receivers_accept_real_deliveries_and_refuse_forgeries() {
    let env = TestEnv::start().await;
    let acme = env.create_workspace("Acme").await;
    for example in ["receive.py", "receive.mjs"] {
        // The endpoint's secret is only known once it exists: create it on a placeholder URL,
        // start the receiver with the secret, then point the endpoint at it.
        let endpoint = acme
            .api
            .add_endpoint("http://127.0.0.1:9/webhooks", &["link.clicked"])
            .await;
        let id = endpoint["id"].as_str().unwrap();
        let (mut receiver, url, scratch) =
            documented_receiver(example, endpoint["secret"].as_str().unwrap()).await;
        let (status, _) = acme
            .api
            .patch(&format!("/webhooks/{id}"), json!({ "url": url }))
            .await;
        assert_eq!(status, StatusCode::OK);

        let (status, delivery) = acme
            .api
            .post(
                &format!("/webhooks/{id}/test"),
                json!({"event": "link.clicked"}),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        let mut lines = BufReader::new(receiver.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(DEADLINE, lines.next_line())
            .await
            .expect("the example prints the event")
            .unwrap()
            .unwrap();
        assert!(line.starts_with("link.clicked evt_"), "{example}: {line}");
        assert!(line.contains(r#""device""#), "{example}: {line}");
        eventually("the delivery to succeed", DEADLINE, || async {
            let (_, delivery) = acme
                .api
                .get(&format!("/deliveries/{}", delivery["id"].as_str().unwrap()))
                .await;
            (delivery["status"] == "succeeded").then_some(())
        })
        .await;

        let forged = reqwest::Client::new()
            .post(&url)
            .header("webhook-id", "evt_0192f0c7e9a47c3e8f1a2b3c4d5e6f70")
            .header(
                "webhook-timestamp",
                chrono::Utc::now().timestamp().to_string(),
            )
            .header("webhook-signature", "v1,Zm9yZ2Vk")
            .body(r#"{"id":"evt_0192f0c7e9a47c3e8f1a2b3c4d5e6f70","event":"link.clicked"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), StatusCode::BAD_REQUEST, "{example}");
        receiver.kill().await.unwrap();
        if let Some(dir) = scratch {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_outside_the_documented_schema_is_refused_with_422_never_a_server_error() {
    let env = TestEnv::start_with(&[("LINKKIT_ALLOW_PRIVATE_TARGETS", "false")]).await;
    let acme = env.create_workspace("Acme").await;
    let padded = format!(" {} ", "x".repeat(199));
    let refused_links = [
        json!({"destination_url": "https://example.com", "tags": ["a\u{0}b"]}),
        json!({"destination_url": "https://example.com", "segment": "Q4\u{0}"}),
        json!({"destination_url": "https://example.com", "campaign": padded}),
        json!({"destination_url": "https://example.com", "tags": [format!(" {} ", "t".repeat(49))]}),
        json!({"destination_url": "https://exa*mple.com/"}),
        json!({"destination_url": " https://example.com/"}),
        json!({"destination_url": "http://0x7f.1/"}),
    ];
    for body in refused_links {
        let (status, answer) = acme.api.post("/links", body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
    }
    let (status, answer) = acme
        .api
        .post(
            "/webhooks",
            json!({"url": "https://hooks.example.com/x", "events": ["link.clicked"], "description": "a\u{0}"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    let (status, answer) = acme
        .api
        .post(
            "/webhooks",
            json!({"url": "https://hooks_example.com/x", "events": ["link.clicked"]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("host"),
        "{answer}"
    );

    // What the document allows is accepted, non-ASCII paths and international names included.
    for destination in [
        "https://example.com/ünïcode?q=a b",
        "HTTPS://xn--bcher-kva.example:8443/#top",
        "http://192.0.2.1/",
    ] {
        acme.api
            .add_link(json!({"destination_url": destination, "tags": [" spaced "]}))
            .await;
    }
    env.stop().await;
}
