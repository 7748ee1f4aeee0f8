//! The whole path: API or redirect → RabbitMQ → fan-out → sender → a real receiver, with every
//! event type, signatures, retries and workspace isolation.

use std::collections::HashMap;
use std::time::Duration;

use linkkit::Service;
use linkkit_core::{EndpointId, Envelope, EventType, WorkspaceId};
use linkkit_store::endpoint_cache::{follow_endpoint_changes, CachedEndpoints};
use linkkit_store::group::GroupLimits;
use linkkit_store::worker_queries::EndpointById;
use linkkit_tests::{eventually, user_agents, Receiver, TestEnv, TestWorkspace};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

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

/// The workers keep endpoints in memory (`linkkit_store::endpoint_cache`); each change through
/// the API must still shape the next event raised after it (its announcement reaches the workers
/// within milliseconds, before an event can cross the broker), in the fan-out (subscriptions,
/// enabled) and in the sender (URL, secret). A witness endpoint on its own receiver, subscribed to everything,
/// shows when each event has been through the pipeline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_change_shapes_the_events_that_follow_it() {
    let env = TestEnv::start().await;
    let (first, second, witness) = (
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    );
    let acme = env.create_workspace("Acme").await;
    acme.api.add_endpoint(&witness.url, &ALL_EVENTS).await;
    let endpoint = acme.api.add_endpoint(&first.url, &["link.created"]).await;
    let path = format!("/webhooks/{}", endpoint["id"].as_str().unwrap());
    let change = |body: Value| {
        let (api, path) = (acme.api.clone(), path.clone());
        async move {
            let (status, changed) = api.patch(&path, body).await;
            assert_eq!(status, StatusCode::OK, "{changed}");
        }
    };
    // Both caches are warm after the first delivery.
    let link = raise_created(&acme, &witness, "first").await;
    first.wait_for(1, DEADLINE).await;

    change(json!({"url": second.url})).await;
    raise_created(&acme, &witness, "second").await;
    second.wait_for(1, DEADLINE).await;
    settled(&first, 1).await;

    let (status, rotated) = acme
        .api
        .post(&format!("{path}/rotate-secret"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    raise_created(&acme, &witness, "third").await;
    let signed = second.wait_for(2, DEADLINE).await;
    assert!(
        signed[1].signature_verifies(rotated["secret"].as_str().unwrap()),
        "the delivery after a rotation is signed with the new secret"
    );

    change(json!({"events": ["link.updated"]})).await;
    raise_created(&acme, &witness, "fourth").await;
    raise_updated(&acme, &witness, &link).await;
    let after_resubscribing = second.wait_for(3, DEADLINE).await;
    assert_eq!(after_resubscribing[2].event_type(), "link.updated");
    settled(&second, 3).await;

    change(json!({"enabled": false})).await;
    raise_updated(&acme, &witness, &link).await;
    settled(&second, 3).await;
    change(json!({"enabled": true})).await;
    raise_updated(&acme, &witness, &link).await;
    second.wait_for(4, DEADLINE).await;

    assert_eq!(acme.api.delete(&path).await.0, StatusCode::NO_CONTENT);
    raise_updated(&acme, &witness, &link).await;
    settled(&second, 4).await;
    env.stop().await;
}

/// Creates a link (raising `link.created`) and returns its id once `witness` has the event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fan_out_stays_a_bounded_number_of_jobs_ahead_and_the_rest_waits_as_events() {
    // The API in this process; a fan-out process allowed 5 waiting jobs, and no sender yet.
    const ROOM: u32 = 5;
    const EVENTS: usize = 40;
    let env = TestEnv::start_parts(
        &[("LINKKIT_FANOUT_MAX_QUEUED_JOBS", &ROOM.to_string())],
        &[Service::Api],
    )
    .await;
    let receiver = Receiver::start().await;
    let acme = env.create_workspace("Acme").await;
    acme.api
        .add_endpoint(&receiver.url, &["link.created"])
        .await;
    let events: Vec<Envelope> = (0..EVENTS)
        .map(|n| Envelope::new(EventType::LinkCreated, json!({ "n": n })))
        .collect();
    env.publish_events(&acme.id, &events).await;

    let deliveries_queue = env.config.namespace.deliveries();
    let mut fanout = env.spawn_linkkit("fanout");
    eventually("the fan-out fills its room", DEADLINE, || async {
        (env.queue_depth(&deliveries_queue).await >= ROOM).then_some(())
    })
    .await;
    // Ten readings of the queue later, the fan-out has not gone on: the other events wait
    // unhandled, with no delivery stored.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM deliveries")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    let queued = env.queue_depth(&deliveries_queue).await;
    assert!(
        (i64::from(ROOM)..=2 * i64::from(ROOM)).contains(&stored),
        "{stored} deliveries stored with room for {ROOM}"
    );
    assert_eq!(
        i64::from(queued),
        stored,
        "each stored delivery's job waits"
    );

    // A sender makes room: every event is then delivered, once.
    let mut sender = env.spawn_linkkit("sender");
    let ids = receiver.wait_for_distinct(EVENTS, DEADLINE).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(ids.len(), EVENTS);
    assert_eq!(
        receiver.received().len(),
        EVENTS,
        "no event delivered twice"
    );
    for process in [&mut fanout, &mut sender] {
        process.start_kill().ok();
        let _ = process.wait().await;
    }
    env.stop().await;
}

async fn raise_created(acme: &TestWorkspace, witness: &Receiver, slug: &str) -> String {
    let expected = witness.received().len() + 1;
    let link = acme
        .api
        .add_link(json!({"destination_url": "https://example.com", "slug": slug}))
        .await;
    witness.wait_for(expected, DEADLINE).await;
    link["id"].as_str().unwrap().to_owned()
}

/// Changes a link (raising `link.updated`) and returns once `witness` has the event.
async fn raise_updated(acme: &TestWorkspace, witness: &Receiver, link_id: &str) {
    let expected = witness.received().len() + 1;
    let campaign = format!("campaign {expected}");
    let (status, body) = acme
        .api
        .patch(&format!("/links/{link_id}"), json!({"campaign": campaign}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    witness.wait_for(expected, DEADLINE).await;
}

/// Checks that `receiver` has `expected` requests once a stray delivery of an event the witness
/// has seen has had the time to arrive.
async fn settled(receiver: &Receiver, expected: usize) {
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received().len(), expected);
}

/// The cache answers from memory (a change Postgres does not announce goes unseen), drops what
/// it holds when its connection is lost, and follows announced changes again once back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoint_cache_answers_from_memory_and_follows_announced_changes() {
    let env = TestEnv::start_parts(&[], &[Service::Api]).await;
    let acme = env.create_workspace("Acme").await;
    let endpoint = acme
        .api
        .add_endpoint("https://first.example/hook", &["link.created"])
        .await;
    let key = (
        WorkspaceId::parse(&acme.id).unwrap(),
        EndpointId::parse(endpoint["id"].as_str().unwrap()).unwrap(),
    );
    let cache = CachedEndpoints::new(EndpointById(env.pool.clone()), GroupLimits::default());
    let shutdown = CancellationToken::new();
    let following = tokio::spawn(follow_endpoint_changes(
        env.pool.clone(),
        vec![Box::new(cache.clone())],
        shutdown.clone(),
    ));
    let url_now = || cached_url(&cache, &key);
    let url_becomes = |wanted| cached_url_becomes(&cache, &key, wanted);
    // Kept: a change Postgres does not announce goes unseen.
    keeps_from_memory(
        &env,
        &cache,
        &key,
        "https://first.example/hook",
        "https://unannounced.example/hook",
    )
    .await;

    // Announcements made while the connection is down are lost, so nothing kept survives it.
    let (terminated,): (i64,) = sqlx::query_as(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE '%linkkit_endpoint_changes%' \
         AND pid <> pg_backend_pid()",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(terminated, 1, "the cache's listener was found");
    url_becomes("https://unannounced.example/hook").await;
    // Kept again once listening again.
    keeps_from_memory(
        &env,
        &cache,
        &key,
        "https://unannounced.example/hook",
        "https://unannounced-again.example/hook",
    )
    .await;

    let (status, body) = acme
        .api
        .patch(
            &format!("/webhooks/{}", key.1),
            json!({"url": "https://announced.example/hook"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    url_becomes("https://announced.example/hook").await;
    assert_eq!(
        acme.api.delete(&format!("/webhooks/{}", key.1)).await.0,
        StatusCode::NO_CONTENT
    );
    eventually("the deleted endpoint to be gone", DEADLINE, || async {
        url_now().await.is_none().then_some(())
    })
    .await;

    shutdown.cancel();
    following.await.unwrap();
    env.stop().await;
}

type EndpointKey = (WorkspaceId, EndpointId);

/// Waits until `cache` follows changes, then checks that it keeps `kept` (the URL Postgres has
/// now) when the URL becomes `unannounced` without an announcement.
async fn keeps_from_memory(
    env: &TestEnv,
    cache: &CachedEndpoints,
    key: &EndpointKey,
    kept: &str,
    unannounced: &str,
) {
    eventually("the cache to follow changes", DEADLINE, || async {
        cache.follows_changes().then_some(())
    })
    .await;
    assert_eq!(cached_url(cache, key).await.as_deref(), Some(kept));
    update_unannounced(env, &key.1, unannounced).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        cached_url(cache, key).await.as_deref(),
        Some(kept),
        "answered from memory"
    );
}

/// Changes an endpoint's URL with the triggers off, so no change is announced.
async fn update_unannounced(env: &TestEnv, endpoint: &EndpointId, url: &str) {
    let mut unannounced = env.pool.begin().await.unwrap();
    sqlx::query("SET LOCAL session_replication_role = replica")
        .execute(&mut *unannounced)
        .await
        .unwrap();
    sqlx::query("UPDATE endpoints SET url = $2 WHERE id = $1")
        .bind(endpoint.as_str())
        .bind(url)
        .execute(&mut *unannounced)
        .await
        .unwrap();
    unannounced.commit().await.unwrap();
}

async fn cached_url(cache: &CachedEndpoints, key: &EndpointKey) -> Option<String> {
    cache.run(key.clone()).await.unwrap().map(|row| row.url)
}

async fn cached_url_becomes(cache: &CachedEndpoints, key: &EndpointKey, wanted: &str) {
    eventually(
        &format!("the cached URL to be {wanted}"),
        DEADLINE,
        || async { (cached_url(cache, key).await.as_deref() == Some(wanted)).then_some(()) },
    )
    .await;
}
