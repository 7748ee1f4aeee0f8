//! The whole path: API or redirect → RabbitMQ → fan-out → sender → a real receiver, with every
//! event type, signatures, retries and workspace isolation.

use std::collections::HashMap;
use std::time::Duration;

use linkkit_tests::{eventually, user_agents, Receiver, TestEnv};
use reqwest::StatusCode;
use serde_json::{json, Value};

const DEADLINE: Duration = Duration::from_secs(30);
const ALL_EVENTS: [&str; 5] = [
    "link.created",
    "link.clicked",
    "qr.scanned",
    "link.updated",
    "link.deleted",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_click_scan_update_and_delete_each_arrive_once_signed_and_complete() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    let acme = env.create_workspace("Acme").await;
    let endpoint = acme.api.add_endpoint(&receiver.url, &ALL_EVENTS).await;
    let secret = endpoint["secret"].as_str().unwrap().to_owned();

    let link = acme
        .api
        .add_link(json!({
            "destination_url": "https://example.com/product",
            "slug": "summer-sale",
            "segment": "Black Friday 2026",
            "campaign": "Q4 Sales",
            "tags": ["promo"],
        }))
        .await;
    let link_id = link["id"].as_str().unwrap().to_owned();
    assert_eq!(link["short_url"], "https://lkkt.in/summer-sale");

    let click = env
        .visit("summer-sale?utm_source=mail", user_agents::CHROME_WINDOWS)
        .await;
    assert_eq!(click.status(), StatusCode::FOUND);
    assert_eq!(
        click.headers()["location"],
        "https://example.com/product?utm_source=mail"
    );
    let scan = env.visit("summer-sale?qr=1", user_agents::IPHONE).await;
    assert_eq!(
        scan.headers()["location"],
        "https://example.com/product",
        "qr=1 is not passed on"
    );

    // Wait for the three events so far before changing the link, so each event carries the
    // state it was raised with.
    receiver.wait_for(3, DEADLINE).await;
    let (status, updated) = acme
        .api
        .patch(
            &format!("/links/{link_id}"),
            json!({"destination_url": "https://example.com/new"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    let (status, _) = acme.api.delete(&format!("/links/{link_id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // A change reaches every redirect within a second.
    eventually(
        "the deleted link to answer 410",
        Duration::from_secs(2),
        // HEAD answers like GET but emits no event, so polling adds no clicks.
        || async {
            let head = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap()
                .head(format!("{}/summer-sale", env.redirect_url))
                .send()
                .await
                .unwrap();
            (head.status() == StatusCode::GONE).then_some(())
        },
    )
    .await;

    receiver.wait_for(5, DEADLINE).await;
    // Give a stray duplicate the chance to show up before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let received = receiver.received();
    let by_type: HashMap<&str, Vec<&linkkit_tests::Received>> =
        received.iter().fold(HashMap::new(), |mut map, request| {
            map.entry(request.event_type()).or_default().push(request);
            map
        });
    for event in ALL_EVENTS {
        assert_eq!(
            by_type.get(event).map(Vec::len),
            Some(1),
            "{event} arrives exactly once: {by_type:?}"
        );
    }

    for request in &received {
        assert!(
            request.signature_verifies(&secret),
            "signature of {}",
            request.event_type()
        );
        assert_eq!(
            request.header("webhook-id"),
            request.json["id"].as_str().unwrap()
        );
        assert!(request.header("webhook-id").starts_with("evt_"));
        assert_eq!(request.header("content-type"), "application/json");
        assert!(request
            .header("user-agent")
            .starts_with("Linkkit-Webhooks/"));
        let timestamp = request.json["timestamp"].as_str().unwrap();
        assert!(
            timestamp.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(timestamp).is_ok(),
            "{timestamp}"
        );
    }

    let clicked = &by_type["link.clicked"][0].json["data"];
    assert_eq!(clicked["link_id"], link_id.as_str());
    assert_eq!(clicked["short_url"], "https://lkkt.in/summer-sale");
    assert_eq!(clicked["destination_url"], "https://example.com/product");
    assert_eq!(clicked["segment"], "Black Friday 2026");
    assert_eq!(clicked["campaign"], "Q4 Sales");
    assert_eq!(clicked["click_location"], "Unknown");
    assert_eq!(clicked["device"], "Desktop");
    assert_eq!(by_type["qr.scanned"][0].json["data"]["device"], "Mobile");

    let created = &by_type["link.created"][0].json["data"];
    for field in [
        "link_id",
        "short_url",
        "destination_url",
        "segment",
        "campaign",
        "tags",
        "created_at",
        "updated_at",
    ] {
        assert!(created.get(field).is_some(), "link.created carries {field}");
    }
    assert_eq!(created["tags"], json!(["promo"]));

    let update = &by_type["link.updated"][0].json["data"];
    assert_eq!(update["destination_url"], "https://example.com/new");
    assert_eq!(update["changed_fields"], json!(["destination_url"]));
    assert_eq!(
        update["previous_attributes"]["destination_url"],
        "https://example.com/product"
    );
    assert_eq!(
        by_type["link.deleted"][0].json["data"]["link_id"],
        link_id.as_str()
    );

    // Every delivery is recorded as succeeded, with its attempt.
    let endpoint_id = endpoint["id"].as_str().unwrap();
    let (status, deliveries) = acme
        .api
        .get(&format!(
            "/webhooks/{endpoint_id}/deliveries?status=succeeded"
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    let deliveries = deliveries["data"].as_array().unwrap();
    assert_eq!(deliveries.len(), 5);
    let (_, one) = acme
        .api
        .get(&format!(
            "/deliveries/{}",
            deliveries[0]["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(one["attempts"][0]["status_code"], 200);
    assert_eq!(one["attempt_count"], 1);

    receiver.stop();
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_get_only_their_own_workspaces_events_and_only_the_types_they_chose() {
    let env = TestEnv::start().await;
    let (clicks_only, created_a, created_b) = (
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    );
    let a = env.create_workspace("A").await;
    let b = env.create_workspace("B").await;
    a.api
        .add_endpoint(&clicks_only.url, &["link.clicked"])
        .await;
    a.api.add_endpoint(&created_a.url, &["link.created"]).await;
    b.api.add_endpoint(&created_b.url, &["link.created"]).await;

    a.api
        .add_link(json!({"destination_url": "https://example.com/a", "slug": "from-a"}))
        .await;
    env.visit("from-a", user_agents::IPAD).await;

    let created = created_a.wait_for(1, DEADLINE).await;
    assert_eq!(created[0].event_type(), "link.created");
    let clicked = clicks_only.wait_for(1, DEADLINE).await;
    assert_eq!(clicked[0].event_type(), "link.clicked");
    assert_eq!(clicked[0].json["data"]["device"], "Tablet");

    // B's endpoint subscribes to the same type but must see nothing of A. A link of B's own,
    // created afterwards, arrives — so B's silence is not just slowness.
    b.api
        .add_link(json!({"destination_url": "https://example.com/b", "slug": "from-b"}))
        .await;
    let only_b = created_b.wait_for(1, DEADLINE).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(created_b.received().len(), 1);
    assert_eq!(only_b[0].json["data"]["slug"], "from-b");
    assert_eq!(
        created_a.received().len(),
        1,
        "A's endpoint never sees B's link"
    );
    assert_eq!(clicks_only.received().len(), 1);

    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_attempt_is_retried_and_every_attempt_is_recorded() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    receiver.respond_next(&[500]);
    let acme = env.create_workspace("Acme").await;
    let endpoint = acme
        .api
        .add_endpoint(&receiver.url, &["link.created"])
        .await;
    acme.api
        .add_link(json!({"destination_url": "https://example.com/retry"}))
        .await;

    let received = receiver.wait_for(2, DEADLINE).await;
    assert_eq!(
        received[0].header("webhook-id"),
        received[1].header("webhook-id"),
        "a retry keeps the event id"
    );
    let endpoint_id = endpoint["id"].as_str().unwrap();
    let delivery = eventually("the delivery to succeed", DEADLINE, || async {
        let (_, list) = acme
            .api
            .get(&format!(
                "/webhooks/{endpoint_id}/deliveries?status=succeeded"
            ))
            .await;
        list["data"].as_array().and_then(|d| d.first().cloned())
    })
    .await;
    let (_, delivery) = acme
        .api
        .get(&format!("/deliveries/{}", delivery["id"].as_str().unwrap()))
        .await;
    let attempts: Vec<&Value> = delivery["attempts"].as_array().unwrap().iter().collect();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["status_code"], 500);
    assert_eq!(attempts[1]["status_code"], 200);
    assert_eq!(delivery["attempt_count"], 2);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_delivery_is_dead_and_lands_in_the_dead_letter_queue() {
    let env = TestEnv::start_with(&[("LINKKIT_RETRY_SCHEDULE", "1s")]).await;
    let receiver = Receiver::start().await;
    receiver.respond_otherwise(503);
    let acme = env.create_workspace("Acme").await;
    let endpoint = acme
        .api
        .add_endpoint(&receiver.url, &["link.created"])
        .await;
    acme.api
        .add_link(json!({"destination_url": "https://example.com/dead"}))
        .await;

    let endpoint_id = endpoint["id"].as_str().unwrap();
    let dead = eventually("the delivery to be dead", DEADLINE, || async {
        let (_, list) = acme
            .api
            .get(&format!("/webhooks/{endpoint_id}/deliveries?status=dead"))
            .await;
        list["data"].as_array().and_then(|d| d.first().cloned())
    })
    .await;
    assert_eq!(dead["attempt_count"], 2);
    assert_eq!(receiver.received().len(), 2);
    let dead_queue = env.config.namespace.dead_queue();
    eventually("the job in the dead-letter queue", DEADLINE, || async {
        (env.queue_depth(&dead_queue).await == 1).then_some(())
    })
    .await;
    env.stop().await;
}
