//! Delivery guarantees under faults (issue: deliveries that survive anything). Each test names
//! what it breaks and counts what arrives at a real receiver by `webhook-id`.

use std::time::Duration;

use linkkit_bus::Outgoing;
use linkkit_core::event::sample;
use linkkit_core::{DeliveryId, DeliveryJob, EndpointId, Envelope, EventType, WorkspaceId};
use linkkit_store::deliveries::PendingDelivery;
use linkkit_store::endpoints::Subscribers;
use linkkit_tests::{eventually, Receiver, TestEnv, TestWorkspace};
use reqwest::StatusCode;
use serde_json::{json, Value};

const DEADLINE: Duration = Duration::from_secs(40);

fn clicks(count: usize) -> Vec<Envelope> {
    (0..count).map(|_| sample(EventType::LinkClicked)).collect()
}

async fn deliveries(workspace: &TestWorkspace, endpoint: &Value, status: &str) -> Vec<Value> {
    let path = format!(
        "/webhooks/{}/deliveries?status={status}&limit=100",
        endpoint["id"].as_str().unwrap()
    );
    let (code, list) = workspace.api.get(&path).await;
    assert_eq!(code, StatusCode::OK, "{list}");
    list["data"].as_array().cloned().unwrap_or_default()
}

/// The id of `event`'s one delivery, once its status is `status`.
async fn delivery_once(env: &TestEnv, event: &Envelope, status: &str) -> String {
    eventually(
        &format!("the delivery to be {status}"),
        DEADLINE,
        || async {
            let row: Option<(String, String)> =
                sqlx::query_as("SELECT id, status FROM deliveries WHERE event_id = $1")
                    .bind(event.id.as_str())
                    .fetch_optional(&env.pool)
                    .await
                    .unwrap();
            row.filter(|(_, now)| now == status).map(|(id, _)| id)
        },
    )
    .await
}

/// A workspace with one endpoint subscribed to `link.clicked`, at a receiver of its own.
async fn clicks_endpoint(env: &TestEnv) -> (Receiver, TestWorkspace, Value) {
    let receiver = Receiver::start().await;
    let acme = env.create_workspace("Acme").await;
    let endpoint = acme
        .api
        .add_endpoint(&receiver.url, &["link.clicked"])
        .await;
    (receiver, acme, endpoint)
}

/// The sender's key for `delivery_id` in `generation`, once it says done, and the
/// milliseconds it has left.
async fn done_key(
    env: &TestEnv,
    redis: &redis::aio::MultiplexedConnection,
    delivery_id: &str,
    generation: u32,
) -> (String, i64) {
    let key = env
        .config
        .namespace
        .redis_key(&["delivery", delivery_id, &generation.to_string()]);
    let ttl_ms = eventually(&format!("{key} marked done"), DEADLINE, || {
        let (mut redis, key) = (redis.clone(), key.clone());
        async move {
            let value: Option<String> = redis::cmd("GET")
                .arg(&key)
                .query_async(&mut redis)
                .await
                .unwrap();
            let ttl_ms: i64 = redis::cmd("PTTL")
                .arg(&key)
                .query_async(&mut redis)
                .await
                .unwrap();
            (value.as_deref() == Some("done")).then_some(ttl_ms)
        }
    })
    .await;
    (key, ttl_ms)
}

/// What a fan-out worker that died before publishing leaves behind: `event` and its delivery
/// to `endpoint` stored, and no job.
async fn store_without_publishing(
    env: &TestEnv,
    workspace: &TestWorkspace,
    endpoint: &Value,
    event: &Envelope,
) -> Vec<PendingDelivery> {
    linkkit_store::deliveries::create_for_event(
        &env.pool,
        &WorkspaceId::parse(&workspace.id).unwrap(),
        event,
        &Subscribers {
            enabled: vec![EndpointId::parse(endpoint["id"].as_str().unwrap()).unwrap()],
            disabled: vec![],
        },
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_receiver_is_down_and_comes_back_every_event_arrives() {
    let env = TestEnv::start_with(&[("LINKKIT_RETRY_SCHEDULE", "1s,1s,1s,1s,1s,1s,1s,1s")]).await;
    let receiver = Receiver::start().await;
    let acme = env.create_workspace("Acme").await;
    acme.api
        .add_endpoint(&receiver.url, &["link.clicked"])
        .await;
    receiver.go_down();

    let events = clicks(20);
    env.publish_events(&acme.id, &events).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(receiver.received().is_empty());
    receiver.come_back().await;

    let ids = receiver.wait_for_distinct(20, DEADLINE).await;
    for event in &events {
        assert!(ids.contains(event.id.as_str()), "{} arrived", event.id);
    }
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_delivery_is_visible_and_a_replay_after_the_fix_delivers_it_exactly_once() {
    let env = TestEnv::start_with(&[("LINKKIT_RETRY_SCHEDULE", "1s")]).await;
    let receiver = Receiver::start().await;
    receiver.respond_otherwise(500);
    let acme = env.create_workspace("Acme").await;
    let endpoint = acme
        .api
        .add_endpoint(&receiver.url, &["link.clicked"])
        .await;
    let event = sample(EventType::LinkClicked);
    env.publish_events(&acme.id, std::slice::from_ref(&event))
        .await;

    let dead = eventually("the delivery to be dead", DEADLINE, || async {
        deliveries(&acme, &endpoint, "dead")
            .await
            .into_iter()
            .next()
    })
    .await;
    let (_, detail) = acme
        .api
        .get(&format!("/deliveries/{}", dead["id"].as_str().unwrap()))
        .await;
    assert_eq!(detail["attempts"].as_array().unwrap().len(), 2);
    assert_eq!(detail["attempts"][1]["status_code"], 500);
    let before_fix = receiver.received().len();

    receiver.respond_otherwise(200);
    let (status, replayed) = acme
        .api
        .post(
            &format!("/webhooks/{}/replay", endpoint["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(replayed["count"], 1);
    receiver.wait_for(before_fix + 1, DEADLINE).await;
    eventually("the delivery to succeed", DEADLINE, || async {
        (deliveries(&acme, &endpoint, "succeeded").await.len() == 1).then_some(())
    })
    .await;

    // The dead job still in the dead-letter queue is stale now: the operator's replay removes
    // it instead of sending the event a second time.
    let report = linkkit_sender::dead_letters::replay(
        &linkkit_bus::Broker::new(TestEnv::amqp_url()),
        &env.topology(),
        &env.pool,
        usize::MAX,
        None,
    )
    .await
    .unwrap();
    assert_eq!((report.replayed, report.stale), (0, 1));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let successes = receiver.received().iter().skip(before_fix).count();
    assert_eq!(successes, 1, "exactly one delivery after the fix");
    assert_eq!(
        receiver.received().last().unwrap().header("webhook-id"),
        event.id.as_str()
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_replays_dead_jobs_from_the_dead_letter_queue() {
    let env = TestEnv::start_with(&[("LINKKIT_RETRY_SCHEDULE", "")]).await;
    let receiver = Receiver::start().await;
    receiver.respond_next(&[500, 500]);
    let acme = env.create_workspace("Acme").await;
    let endpoint = acme
        .api
        .add_endpoint(&receiver.url, &["link.clicked"])
        .await;
    env.publish_events(&acme.id, &clicks(2)).await;
    eventually("two dead deliveries", DEADLINE, || async {
        (deliveries(&acme, &endpoint, "dead").await.len() == 2).then_some(())
    })
    .await;

    let broker = linkkit_bus::Broker::new(TestEnv::amqp_url());
    let listed = linkkit_sender::dead_letters::list(&broker, &env.topology(), 10)
        .await
        .unwrap();
    assert_eq!(listed.len(), 2);
    assert!(
        listed
            .iter()
            .all(|l| l.reason.contains("retries exhausted")),
        "{listed:?}"
    );
    let report =
        linkkit_sender::dead_letters::replay(&broker, &env.topology(), &env.pool, usize::MAX, None)
            .await
            .unwrap();
    assert_eq!(report.replayed, 2);
    receiver.wait_for_distinct(2, DEADLINE).await;
    eventually("both deliveries to succeed", DEADLINE, || async {
        (deliveries(&acme, &endpoint, "succeeded").await.len() == 2).then_some(())
    })
    .await;
    assert_eq!(env.queue_depth(&env.config.namespace.dead_queue()).await, 0);
    broker.close().await;
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_hangs_never_holds_up_a_healthy_one() {
    let env = TestEnv::start_with(&[
        ("LINKKIT_DELIVERY_TIMEOUT", "2s"),
        ("LINKKIT_SENDER_CONCURRENCY", "8"),
        ("LINKKIT_ENDPOINT_CONCURRENCY", "2"),
        ("LINKKIT_RETRY_SCHEDULE", "1s,1s,1s"),
    ])
    .await;
    let (hanging, healthy) = (Receiver::start().await, Receiver::start().await);
    hanging.delay_answers(Duration::from_secs(30));
    let acme = env.create_workspace("Acme").await;
    acme.api.add_endpoint(&hanging.url, &["link.clicked"]).await;
    acme.api.add_endpoint(&healthy.url, &["link.clicked"]).await;

    env.publish_events(&acme.id, &clicks(40)).await;
    healthy.wait_for_distinct(40, DEADLINE).await;
    assert!(
        hanging.max_in_flight() <= 2,
        "the hanging endpoint never had more than its cap in flight (had {})",
        hanging.max_in_flight()
    );
    assert!(
        hanging.distinct_ids().len() < 40,
        "the hanging endpoint did not get everything first"
    );
    hanging.stop();
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_earns_attempts_in_flight_so_one_that_hangs_from_the_start_ties_up_few() {
    let cap = 16;
    let env = TestEnv::start_with(&[
        ("LINKKIT_DELIVERY_TIMEOUT", "30s"),
        ("LINKKIT_ENDPOINT_CONCURRENCY", &cap.to_string()),
        ("LINKKIT_RETRY_SCHEDULE", "1s,1s,1s"),
    ])
    .await;
    let (hanging, slow) = (Receiver::start().await, Receiver::start().await);
    hanging.delay_answers(Duration::from_secs(60));
    slow.delay_answers(Duration::from_millis(200));
    let acme = env.create_workspace("Acme").await;
    acme.api.add_endpoint(&hanging.url, &["link.clicked"]).await;
    acme.api.add_endpoint(&slow.url, &["link.clicked"]).await;

    env.publish_events(&acme.id, &clicks(120)).await;
    slow.wait_for_distinct(120, DEADLINE).await;
    assert!(
        hanging.max_in_flight() <= linkkit_sender::FIRST_SLOTS,
        "an endpoint that never answered kept its first slots only (had {} in flight)",
        hanging.max_in_flight()
    );
    assert!(
        (linkkit_sender::FIRST_SLOTS + 1..=cap).contains(&slow.max_in_flight()),
        "a slow endpoint that answers earns more slots, up to the cap (had {} in flight)",
        slow.max_in_flight()
    );
    hanging.stop();
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_on_any_queue_are_dead_lettered_and_good_ones_behind_them_still_arrive()
{
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    let acme = env.create_workspace("Acme").await;
    acme.api
        .add_endpoint(&receiver.url, &["link.clicked"])
        .await;
    let namespace = env.config.namespace.clone();
    let broker = linkkit_bus::Broker::new(TestEnv::amqp_url());
    let publisher = linkkit_bus::Publisher::new(broker.clone(), env.topology());
    let garbage = |exchange: String, routing_key: &str, body: &[u8]| linkkit_bus::Outgoing {
        exchange,
        routing_key: routing_key.to_owned(),
        body: body.to_vec(),
        headers: vec![(linkkit_bus::WORKSPACE_HEADER, acme.id.clone())],
    };
    publisher
        .publish_all(&[
            garbage(namespace.events_exchange(), "link.clicked", b"not json"),
            garbage(
                String::new(),
                &namespace.fanout_queue(),
                b"{\"event\": \"link.clicked\"}",
            ),
            garbage(namespace.deliveries(), "job", b"{\"delivery_id\": 7}"),
            garbage(String::new(), &namespace.deliveries(), b"\x00\x01binary"),
        ])
        .await
        .unwrap();
    let good = clicks(3);
    env.publish_events(&acme.id, &good).await;

    receiver.wait_for_distinct(3, DEADLINE).await;
    // Each unparseable message is dead-lettered once, by the consumer of the queue it reached.
    let dead = eventually("four dead letters", DEADLINE, || async {
        (env.queue_depth(&namespace.dead_queue()).await == 4).then_some(())
    });
    dead.await;
    let letters = env.dead_letters().await;
    let from_fanout = letters
        .iter()
        .filter(|l| l.source_queue == namespace.fanout_queue())
        .count();
    let from_deliveries = letters
        .iter()
        .filter(|l| l.source_queue == namespace.deliveries())
        .count();
    assert_eq!((from_fanout, from_deliveries), (2, 2), "{letters:?}");
    assert!(letters.iter().all(|l| !l.reason.is_empty()));
    assert!(letters
        .iter()
        .any(|l| l.reason.contains("not a delivery job")));
    broker.close().await;
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_event_published_twice_is_delivered_once_per_endpoint() {
    let env = TestEnv::start().await;
    let (first, second) = (Receiver::start().await, Receiver::start().await);
    let acme = env.create_workspace("Acme").await;
    acme.api.add_endpoint(&first.url, &["link.clicked"]).await;
    acme.api.add_endpoint(&second.url, &["link.clicked"]).await;
    let event = sample(EventType::LinkClicked);
    env.publish_events(&acme.id, &[event.clone(), event.clone()])
        .await;
    env.publish_events(&acme.id, std::slice::from_ref(&event))
        .await;
    // A later, different event marks the point by which duplicates would have shown up.
    let marker = sample(EventType::LinkClicked);
    env.publish_events(&acme.id, std::slice::from_ref(&marker))
        .await;

    first.wait_for_distinct(2, DEADLINE).await;
    second.wait_for_distinct(2, DEADLINE).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    for receiver in [&first, &second] {
        let copies = receiver
            .received()
            .iter()
            .filter(|r| r.header("webhook-id") == event.id.as_str())
            .count();
        assert_eq!(copies, 1);
    }
    env.stop().await;
}

/// A sent delivery is not sent again once the sender's key for it is gone (it lasts an hour):
/// a copy of its event makes no job (the fan-out publishes only `pending` deliveries), and a
/// job that may have been sent (parked, redelivered, or published for a copy of the event)
/// finds the delivery sent in Postgres and sends nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sent_delivery_is_not_sent_again_once_its_key_is_gone() {
    let env = TestEnv::start().await;
    let (receiver, acme, endpoint) = clicks_endpoint(&env).await;
    let event = sample(EventType::LinkClicked);
    env.publish_events(&acme.id, std::slice::from_ref(&event))
        .await;
    receiver.wait_for_distinct(1, DEADLINE).await;
    let delivery_id = delivery_once(&env, &event, "succeeded").await;

    let mut redis = env.redis().await;
    let (key, ttl_ms) = done_key(&env, &redis, &delivery_id, 0).await;
    let minutes = Duration::from_millis(ttl_ms as u64).as_secs_f64() / 60.0;
    assert!(
        (59.0..=60.0).contains(&minutes),
        "the done key lasts an hour, not {minutes:.1} minutes"
    );
    // Forget it, as its TTL would.
    let removed: i64 = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(removed, 1);

    env.publish_events(&acme.id, std::slice::from_ref(&event))
        .await;
    let parked_copy = DeliveryJob::first_attempt(
        DeliveryId::parse(&delivery_id).unwrap(),
        WorkspaceId::parse(&acme.id).unwrap(),
        EndpointId::parse(endpoint["id"].as_str().unwrap()).unwrap(),
        0,
        event.timestamp,
        event.clone(),
    )
    .maybe_sent();
    env.publish(&[Outgoing::job(&env.config.namespace, &parked_copy)])
        .await;
    // A later, different event marks the point by which a second send would have shown up.
    let marker = sample(EventType::LinkClicked);
    env.publish_events(&acme.id, std::slice::from_ref(&marker))
        .await;
    receiver.wait_for_distinct(2, DEADLINE).await;
    eventually("the parked copy acknowledged", DEADLINE, || async {
        (env.queue_depth(&env.config.namespace.deliveries()).await == 0).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let copies = receiver
        .received()
        .iter()
        .filter(|r| r.header("webhook-id") == event.id.as_str())
        .count();
    assert_eq!(copies, 1, "the sent delivery was sent again");
    let (attempts,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM delivery_attempts WHERE delivery_id = $1")
            .bind(&delivery_id)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(attempts, 1, "one attempt recorded");
    env.stop().await;
}

/// A fan-out worker that died after storing an event's deliveries and before publishing their
/// jobs left them `pending` with no job anywhere: the copy of the event that the broker
/// redelivers (or a publisher republishes) publishes them, so nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_stored_by_a_worker_that_died_before_publishing_are_sent_by_the_events_next_copy(
) {
    let env = TestEnv::start().await;
    let (receiver, acme, endpoint) = clicks_endpoint(&env).await;
    let event = sample(EventType::LinkClicked);
    let stored = store_without_publishing(&env, &acme, &endpoint, &event).await;
    assert_eq!(stored.len(), 1, "one pending delivery stored");

    env.publish_events(&acme.id, std::slice::from_ref(&event))
        .await;
    receiver.wait_for_distinct(1, DEADLINE).await;
    let first = &receiver.received()[0];
    assert_eq!(first.header("webhook-id"), event.id.as_str());
    eventually("the stored delivery recorded as sent", DEADLINE, || async {
        let (status,): (String,) = sqlx::query_as("SELECT status FROM deliveries WHERE id = $1")
            .bind(stored[0].id.as_str())
            .fetch_one(&env.pool)
            .await
            .unwrap();
        (status == "succeeded").then_some(())
    })
    .await;
    env.stop().await;
}

/// A delivery stored by a worker that died before publishing its job, whose endpoint is then
/// disabled, is not left `pending` for ever: the event's next copy finds the endpoint disabled
/// and turns it `dead`, so enabling the endpoint and replaying delivers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_delivery_whose_endpoint_was_disabled_before_its_job_turns_dead_and_replayable() {
    let env = TestEnv::start().await;
    let (receiver, acme, endpoint) = clicks_endpoint(&env).await;
    let event = sample(EventType::LinkClicked);
    store_without_publishing(&env, &acme, &endpoint, &event).await;
    let path = format!("/webhooks/{}", endpoint["id"].as_str().unwrap());
    let (status, _) = acme.api.patch(&path, json!({"enabled": false})).await;
    assert_eq!(status, StatusCode::OK);

    env.publish_events(&acme.id, std::slice::from_ref(&event))
        .await;
    eventually("the stored delivery turned dead", DEADLINE, || async {
        (deliveries(&acme, &endpoint, "dead").await.len() == 1).then_some(())
    })
    .await;
    assert!(deliveries(&acme, &endpoint, "pending").await.is_empty());

    let (status, _) = acme.api.patch(&path, json!({"enabled": true})).await;
    assert_eq!(status, StatusCode::OK);
    let (_, replayed) = acme.api.post(&format!("{path}/replay"), json!({})).await;
    assert_eq!(replayed["count"], 1);
    let received = receiver.wait_for(1, DEADLINE).await;
    assert_eq!(received[0].header("webhook-id"), event.id.as_str());
    env.stop().await;
}

/// A delivery resent (a new generation, `pending`) whose job never made it to the broker gets
/// it from the event's next copy, in its current generation: generation 0's key says "done",
/// so a job of generation 0 would be absorbed and the resend never sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_of_an_event_publishes_a_pending_resend_in_its_own_generation() {
    let env = TestEnv::start().await;
    let (receiver, acme, _) = clicks_endpoint(&env).await;
    let event = sample(EventType::LinkClicked);
    env.publish_events(&acme.id, std::slice::from_ref(&event))
        .await;
    receiver.wait_for(1, DEADLINE).await;
    let delivery_id = delivery_once(&env, &event, "succeeded").await;
    let mut redis = env.redis().await;
    done_key(&env, &redis, &delivery_id, 0).await;

    // A resend whose publish was lost: the delivery is pending in generation 1, with no job.
    let delivery = DeliveryId::parse(&delivery_id).unwrap();
    let generation = linkkit_store::deliveries::start_generation(&env.pool, &delivery)
        .await
        .unwrap();
    assert_eq!(generation, 1);

    env.publish_events(&acme.id, std::slice::from_ref(&event))
        .await;
    let received = receiver.wait_for(2, DEADLINE).await;
    assert!(
        received
            .iter()
            .all(|r| r.header("webhook-id") == event.id.as_str()),
        "both sends are of the one event"
    );
    let key_of_resend = env
        .config
        .namespace
        .redis_key(&["delivery", &delivery_id, "1"]);
    let value: Option<String> = redis::cmd("GET")
        .arg(&key_of_resend)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(
        value.is_some(),
        "the resend was sent under generation 1's key"
    );
    env.stop().await;
}

/// A resend while a retry waits replaces it: the resend is sent, and the old generation's
/// retry, when its queue lets it go, finds the delivery sent and sends nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resend_while_a_retry_waits_replaces_the_retry() {
    // The retry waits 2.4 to 3.6 s (3 s, jittered).
    let env = TestEnv::start_with(&[("LINKKIT_RETRY_SCHEDULE", "3s,3s")]).await;
    let (receiver, acme, _) = clicks_endpoint(&env).await;
    receiver.respond_next(&[500]);
    let event = sample(EventType::LinkClicked);
    env.publish_events(&acme.id, std::slice::from_ref(&event))
        .await;
    receiver.wait_for(1, DEADLINE).await;
    let delivery_id = delivery_once(&env, &event, "failed").await;

    let (status, body) = acme
        .api
        .post(&format!("/deliveries/{delivery_id}/resend"), json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    receiver.wait_for(2, DEADLINE).await;
    // Past the latest moment the old retry could come back, and then some.
    tokio::time::sleep(Duration::from_millis(5_000)).await;
    assert_eq!(
        receiver.received().len(),
        2,
        "the failed attempt and the resend, and no retry of the replaced generation"
    );
    let (_, delivery) = acme.api.get(&format!("/deliveries/{delivery_id}")).await;
    assert_eq!(delivery["status"], "succeeded", "{delivery}");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_disables_the_endpoint_and_enabling_it_resumes_deliveries() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    receiver.respond_next(&[410]);
    let acme = env.create_workspace("Acme").await;
    let endpoint = acme
        .api
        .add_endpoint(&receiver.url, &["link.clicked"])
        .await;
    let path = format!("/webhooks/{}", endpoint["id"].as_str().unwrap());
    env.publish_events(&acme.id, &clicks(1)).await;

    let disabled = eventually("the endpoint to be disabled", DEADLINE, || async {
        let (_, body) = acme.api.get(&path).await;
        (body["enabled"] == false).then_some(body)
    })
    .await;
    assert!(
        disabled["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("410"),
        "{disabled}"
    );

    // While disabled it gets nothing; what it missed is dead and replayable.
    env.publish_events(&acme.id, &clicks(1)).await;
    eventually("the missed delivery to be dead", DEADLINE, || async {
        (deliveries(&acme, &endpoint, "dead").await.len() == 2).then_some(())
    })
    .await;
    assert_eq!(receiver.received().len(), 1);

    let (status, enabled) = acme.api.patch(&path, json!({"enabled": true})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(enabled["disabled_reason"], Value::Null);
    env.publish_events(&acme.id, &clicks(1)).await;
    let (_, replayed) = acme.api.post(&format!("{path}/replay"), json!({})).await;
    assert_eq!(replayed["count"], 2);
    receiver.wait_for(4, DEADLINE).await;
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_failing_for_longer_than_disable_after_is_disabled_with_a_reason() {
    let env = TestEnv::start_with(&[
        ("LINKKIT_DISABLE_AFTER", "2s"),
        ("LINKKIT_RETRY_SCHEDULE", "1s,1s,1s,1s,1s,1s"),
    ])
    .await;
    let receiver = Receiver::start().await;
    receiver.respond_otherwise(500);
    let acme = env.create_workspace("Acme").await;
    let endpoint = acme
        .api
        .add_endpoint(&receiver.url, &["link.clicked"])
        .await;
    let path = format!("/webhooks/{}", endpoint["id"].as_str().unwrap());
    env.publish_events(&acme.id, &clicks(1)).await;
    let disabled = eventually("the endpoint to be disabled", DEADLINE, || async {
        let (_, body) = acme.api.get(&path).await;
        (body["enabled"] == false).then_some(body)
    })
    .await;
    assert!(
        disabled["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("failed for 2s"),
        "{disabled}"
    );
    assert_eq!(deliveries(&acme, &endpoint, "dead").await.len(), 1);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_go_on_when_redis_is_unreachable() {
    let env = TestEnv::start_with(&[("LINKKIT_REDIS_URL", "redis://127.0.0.1:1/0")]).await;
    let receiver = Receiver::start().await;
    let acme = env.create_workspace("Acme").await;
    acme.api
        .add_endpoint(&receiver.url, &["link.clicked"])
        .await;
    env.publish_events(&acme.id, &clicks(3)).await;
    receiver.wait_for_distinct(3, DEADLINE).await;
    let (status, ready) = reqwest::get(format!("{}/readyz", env.admin_url))
        .await
        .map(|r| (r.status(), r))
        .unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["checks"]["redis"], false);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resend_delivers_again_and_a_test_event_reaches_only_its_endpoint() {
    let env = TestEnv::start().await;
    let (target, other) = (Receiver::start().await, Receiver::start().await);
    let acme = env.create_workspace("Acme").await;
    let endpoint = acme.api.add_endpoint(&target.url, &["link.created"]).await;
    acme.api.add_endpoint(&other.url, &["link.clicked"]).await;

    let path = format!("/webhooks/{}/test", endpoint["id"].as_str().unwrap());
    let (status, delivery) = acme.api.post(&path, json!({"event": "link.clicked"})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{delivery}");
    let first = target.wait_for(1, DEADLINE).await;
    assert_eq!(first[0].event_type(), "link.clicked");
    assert_eq!(first[0].json["data"]["device"], "Mobile");

    let resend = format!("/deliveries/{}/resend", delivery["id"].as_str().unwrap());
    eventually("the test delivery to succeed", DEADLINE, || async {
        let (_, d) = acme
            .api
            .get(&format!("/deliveries/{}", delivery["id"].as_str().unwrap()))
            .await;
        (d["status"] == "succeeded").then_some(())
    })
    .await;
    assert_eq!(
        acme.api.post(&resend, json!({})).await.0,
        StatusCode::ACCEPTED
    );
    let both = target.wait_for(2, DEADLINE).await;
    assert_eq!(
        both[0].header("webhook-id"),
        both[1].header("webhook-id"),
        "a resend is the same event"
    );
    let (status, answer) = acme
        .api
        .post(&path, json!({"event": "link.exploded"}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        other.received().is_empty(),
        "a test event reaches only its endpoint"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_endpoint_removes_its_deliveries_and_attempts_and_no_one_elses() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    let acme = env.create_workspace("Acme").await;
    let doomed = acme
        .api
        .add_endpoint(&receiver.url, &["link.clicked"])
        .await;
    let kept = acme
        .api
        .add_endpoint(&receiver.url, &["link.clicked"])
        .await;
    env.publish_events(&acme.id, &clicks(3)).await;
    receiver.wait_for_distinct(3, DEADLINE).await;
    let rows_of = |endpoint: &Value| {
        let endpoint_id = endpoint["id"].as_str().unwrap().to_owned();
        let pool = env.pool.clone();
        async move {
            let (deliveries, attempts): (i64, i64) = sqlx::query_as(
                "SELECT (SELECT count(*) FROM deliveries WHERE endpoint_id = $1), \
                        (SELECT count(*) FROM delivery_attempts a JOIN deliveries d \
                             ON d.id = a.delivery_id WHERE d.endpoint_id = $1)",
            )
            .bind(&endpoint_id)
            .fetch_one(&pool)
            .await
            .unwrap();
            (deliveries, attempts)
        }
    };
    eventually("every attempt recorded", DEADLINE, || async {
        (rows_of(&doomed).await == (3, 3) && rows_of(&kept).await == (3, 3)).then_some(())
    })
    .await;
    let all_attempts = || async {
        let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM delivery_attempts")
            .fetch_one(&env.pool)
            .await
            .unwrap();
        count
    };
    let attempts_before = all_attempts().await;

    let path = format!("/webhooks/{}", doomed["id"].as_str().unwrap());
    assert_eq!(acme.api.delete(&path).await.0, StatusCode::NO_CONTENT);
    assert_eq!(acme.api.delete(&path).await.0, StatusCode::NOT_FOUND);

    assert_eq!(rows_of(&doomed).await, (0, 0));
    assert_eq!(
        rows_of(&kept).await,
        (3, 3),
        "the other endpoint keeps its own"
    );
    assert_eq!(
        all_attempts().await,
        attempts_before - 3,
        "no attempt is left behind"
    );
    env.stop().await;
}
