//! The `clicks` and `scans` of a link: counted by the fan-out as it handles each visit event,
//! once per event, and only on a link of the event's own workspace; and the queue an older
//! release counted from, drained into the counts and removed when an upgraded fan-out starts.

use std::time::Duration;

use lapin::options::{QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use linkkit::Service;
use linkkit_bus::{Broker, Outgoing, Publisher, WORKSPACE_HEADER};
use linkkit_core::{Envelope, EventType};
use linkkit_tests::{eventually, user_agents, Receiver, TestEnv, TestWorkspace};
use reqwest::StatusCode;
use serde_json::{json, Value};

const DEADLINE: Duration = Duration::from_secs(30);
/// How long a count is watched after it was reached, so a visit counted twice would show.
const SETTLE: Duration = Duration::from_millis(700);

async fn add_link(workspace: &TestWorkspace, slug: &str) -> String {
    let body = json!({"destination_url": format!("https://example.com/{slug}"), "slug": slug});
    let link = workspace.api.add_link(body).await;
    link["id"].as_str().unwrap().to_owned()
}

/// The link's `(clicks, scans)` as the API shows them.
async fn visits(workspace: &TestWorkspace, link_id: &str) -> (i64, i64) {
    let (status, link): (StatusCode, Value) = workspace.api.get(&format!("/links/{link_id}")).await;
    assert_eq!(status, StatusCode::OK, "{link}");
    (
        link["clicks"].as_i64().unwrap(),
        link["scans"].as_i64().unwrap(),
    )
}

fn visit_event(event: EventType, link_id: &str) -> Envelope {
    Envelope::new(
        event,
        json!({"link_id": link_id, "short_url": "https://lkkt.in/x", "destination_url": "https://example.com/x",
               "segment": null, "campaign": null, "click_location": "Unknown", "device": "Desktop"}),
    )
}

/// Waits until the link has at least `clicks` clicks, watches it for [`SETTLE`], and asserts
/// that it has exactly `(clicks, 0)`: a visit counted twice would show.
async fn settles_at_clicks(workspace: &TestWorkspace, link_id: &str, clicks: i64, why: &str) {
    eventually(&format!("{clicks} clicks counted"), DEADLINE, || async {
        (visits(workspace, link_id).await.0 >= clicks).then_some(())
    })
    .await;
    tokio::time::sleep(SETTLE).await;
    assert_eq!(visits(workspace, link_id).await, (clicks, 0), "{why}");
}

/// The fan-out's events of one outcome so far, from this process's metrics.
async fn fanned_out(env: &TestEnv, outcome: &str) -> u64 {
    env.metric(&format!(
        "linkkit_fanout_events_total{{outcome=\"{outcome}\"}}"
    ))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clicks_and_scans_are_counted_on_the_link() {
    let env = TestEnv::start().await;
    let acme = env.create_workspace("Acme").await;
    let link_id = add_link(&acme, "counted").await;
    for _ in 0..3 {
        env.visit("counted", user_agents::CHROME_WINDOWS).await;
    }
    for _ in 0..2 {
        env.visit("counted?qr=1", user_agents::IPHONE).await;
    }
    eventually("3 clicks and 2 scans", DEADLINE, || async {
        (visits(&acme, &link_id).await == (3, 2)).then_some(())
    })
    .await;
    tokio::time::sleep(SETTLE).await;
    assert_eq!(visits(&acme, &link_id).await, (3, 2));
    assert!(
        !env.queue_exists(&env.config.namespace.legacy_counters_queue())
            .await,
        "a new deployment has no counters' queue of its own"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_click_published_twice_counts_once_and_never_on_another_workspaces_link() {
    let env = TestEnv::start().await;
    let acme = env.create_workspace("Acme").await;
    let globex = env.create_workspace("Globex").await;
    let link_id = add_link(&acme, "once").await;
    let duplicates_before = fanned_out(&env, "duplicate").await;

    let click = visit_event(EventType::LinkClicked, &link_id);
    env.publish_events(&acme.id, &[click.clone(), click]).await;
    // Another workspace's event naming Acme's link must not move Acme's counts.
    env.publish_events(&globex.id, &[visit_event(EventType::LinkClicked, &link_id)])
        .await;
    let fanout_queue = env.config.namespace.fanout_queue();
    eventually("the fan-out queue drained", DEADLINE, || async {
        (env.queue_depth(&fanout_queue).await == 0).then_some(())
    })
    .await;
    eventually("the second copy seen as a duplicate", DEADLINE, || async {
        (fanned_out(&env, "duplicate").await > duplicates_before).then_some(())
    })
    .await;
    // One more click, published after the others were taken: once it is counted, so were they.
    env.publish_events(&acme.id, &[visit_event(EventType::LinkClicked, &link_id)])
        .await;
    settles_at_clicks(&acme, &link_id, 2, "counted once, on Acme's link only").await;
    env.stop().await;
}

/// Without a subscriber, a visit's event id is remembered in Postgres: a copy that comes later
/// counts nothing, with nothing in Redis; and a week on the fan-out forgets it, in batches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_subscriber_a_visit_is_remembered_for_a_week_and_counts_once() {
    let env = TestEnv::start().await;
    let acme = env.create_workspace("Acme").await;
    let link_id = add_link(&acme, "remembered").await;
    let click = visit_event(EventType::LinkClicked, &link_id);
    env.publish_events(&acme.id, std::slice::from_ref(&click))
        .await;
    eventually("the click counted", DEADLINE, || async {
        (visits(&acme, &link_id).await == (1, 0)).then_some(())
    })
    .await;
    let remembered = |event_id: String| {
        let pool = env.pool.clone();
        async move {
            let (count,): (i64,) =
                sqlx::query_as("SELECT count(*) FROM counted_visits WHERE event_id = $1")
                    .bind(event_id)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            count
        }
    };
    assert_eq!(remembered(click.id.to_string()).await, 1);
    let mut redis = env.redis().await;
    let pattern = format!("{}*", env.config.namespace.redis_key(&["fanout"]));
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(&pattern)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(keys.is_empty(), "nothing kept in Redis: {keys:?}");

    // The copy, then a later click: once that one is counted, the copy was taken.
    let later = visit_event(EventType::LinkClicked, &link_id);
    env.publish_events(&acme.id, &[click.clone(), later.clone()])
        .await;
    eventually("the later click counted", DEADLINE, || async {
        (remembered(later.id.to_string()).await == 1).then_some(())
    })
    .await;
    tokio::time::sleep(SETTLE).await;
    assert_eq!(
        visits(&acme, &link_id).await,
        (2, 0),
        "the copy counted nothing"
    );

    // A week on, the first click is forgotten and the later one, counted now, is not.
    sqlx::query(
        "UPDATE counted_visits SET counted_at = now() - interval '8 days' WHERE event_id = $1",
    )
    .bind(click.id.as_str())
    .execute(&env.pool)
    .await
    .unwrap();
    let forgotten = linkkit_fanout::visit_ledger::prune(&env.pool)
        .await
        .unwrap();
    assert_eq!(forgotten, 1);
    assert_eq!(remembered(click.id.to_string()).await, 0);
    assert_eq!(remembered(later.id.to_string()).await, 1);
    env.stop().await;
}

/// A copy of a visit that finds its subscriptions changed since the first copy counts nothing:
/// counted while no endpoint subscribed, then stored with an endpoint subscribed (and sent to
/// it); or counted when stored, then come again once no endpoint subscribes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_that_finds_its_subscriptions_changed_counts_nothing() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    let acme = env.create_workspace("Acme").await;
    let link_id = add_link(&acme, "changing").await;
    let first = visit_event(EventType::LinkClicked, &link_id);
    env.publish_events(&acme.id, std::slice::from_ref(&first))
        .await;
    eventually("the unsubscribed click counted", DEADLINE, || async {
        (visits(&acme, &link_id).await == (1, 0)).then_some(())
    })
    .await;

    let endpoint = acme
        .api
        .add_endpoint(&receiver.url, &["link.clicked"])
        .await;
    let second = visit_event(EventType::LinkClicked, &link_id);
    env.publish_events(&acme.id, &[first.clone(), second.clone()])
        .await;
    receiver.wait_for_distinct(2, DEADLINE).await;
    settles_at_clicks(
        &acme,
        &link_id,
        2,
        "the first click's copy, stored now, counted nothing",
    )
    .await;

    let path = format!("/webhooks/{}", endpoint["id"].as_str().unwrap());
    let (status, _) = acme.api.delete(&path).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let third = visit_event(EventType::LinkClicked, &link_id);
    env.publish_events(&acme.id, &[second, third]).await;
    settles_at_clicks(
        &acme,
        &link_id,
        3,
        "the second click's copy, unsubscribed now, counted nothing",
    )
    .await;
    env.stop().await;
}

/// With an endpoint subscribed, a visit is counted in the statement that stores its event, and
/// only by the statement that stores it: a copy that comes back (republished, or redelivered
/// after a worker died having stored it) counts nothing, whatever Redis holds; and never on
/// another workspace's link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_subscriber_a_visit_counts_once_however_often_its_event_comes() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    let acme = env.create_workspace("Acme").await;
    acme.api
        .add_endpoint(&receiver.url, &["link.clicked", "qr.scanned"])
        .await;
    let link_id = add_link(&acme, "subscribed").await;
    let click = visit_event(EventType::LinkClicked, &link_id);
    let scan = visit_event(EventType::QrScanned, &link_id);
    env.publish_events(&acme.id, &[click.clone(), scan.clone()])
        .await;
    receiver.wait_for(2, DEADLINE).await;
    eventually("a click and a scan counted", DEADLINE, || async {
        (visits(&acme, &link_id).await == (1, 1)).then_some(())
    })
    .await;

    let duplicates_before = fanned_out(&env, "duplicate").await;
    env.publish_events(&acme.id, &[click, scan]).await;
    eventually("both copies seen as duplicates", DEADLINE, || async {
        (fanned_out(&env, "duplicate").await >= duplicates_before + 2).then_some(())
    })
    .await;
    // Another workspace's event naming Acme's link, delivered to its own endpoint, must not
    // move Acme's counts.
    let globex = env.create_workspace("Globex").await;
    let globex_receiver = Receiver::start().await;
    globex
        .api
        .add_endpoint(&globex_receiver.url, &["link.clicked"])
        .await;
    env.publish_events(&globex.id, &[visit_event(EventType::LinkClicked, &link_id)])
        .await;
    globex_receiver.wait_for(1, DEADLINE).await;
    tokio::time::sleep(SETTLE).await;
    assert_eq!(visits(&acme, &link_id).await, (1, 1), "counted once");
    assert_eq!(
        receiver.received().len(),
        2,
        "each event delivered once (no job for a sent delivery; a key absorbs one not yet recorded)"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_counters_queue_is_counted_into_the_links_and_removed_when_a_fanout_starts() {
    // The API and the redirect of this release, and no fan-out yet.
    let env = TestEnv::start_parts(&[], &[Service::Api, Service::Redirect]).await;
    let acme = env.create_workspace("Acme").await;
    let link_id = add_link(&acme, "legacy").await;
    let namespace = env.config.namespace.clone();
    let legacy = namespace.legacy_counters_queue();

    // The queue as an older release left it: durable, bound to the events exchange for visits,
    // with visits its consumer had not counted yet, and one message that is not an event.
    let broker = Broker::new(TestEnv::amqp_url());
    let channel = broker.channel().await.unwrap();
    // The API and the redirect declare the exchange as they start, which may not have happened
    // yet; the older release's exchange was there, so the test makes sure of it first.
    env.topology().declare(&channel).await.unwrap();
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    channel
        .queue_declare(&legacy, durable, FieldTable::default())
        .await
        .unwrap();
    for visit in [EventType::LinkClicked, EventType::QrScanned] {
        channel
            .queue_bind(
                &legacy,
                &namespace.events_exchange(),
                visit.as_str(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
    }
    let waiting = |body: Vec<u8>| Outgoing {
        exchange: String::new(),
        routing_key: legacy.clone(),
        body,
        headers: vec![(WORKSPACE_HEADER, acme.id.clone())],
    };
    let event_body =
        |event| serde_json::to_vec(&visit_event(event, &link_id)).expect("an envelope serializes");
    let publisher = Publisher::new(broker.clone(), env.topology());
    publisher
        .publish_all(&[
            waiting(event_body(EventType::LinkClicked)),
            waiting(event_body(EventType::LinkClicked)),
            waiting(event_body(EventType::LinkClicked)),
            waiting(event_body(EventType::QrScanned)),
            waiting(b"not an envelope".to_vec()),
        ])
        .await
        .unwrap();

    let mut fanout = env.spawn_linkkit("fanout");
    eventually("the old queue removed", DEADLINE, || async {
        (!env.queue_exists(&legacy).await).then_some(())
    })
    .await;
    assert_eq!(
        visits(&acme, &link_id).await,
        (3, 1),
        "what waited there is counted before the queue goes"
    );
    let letters = env.dead_letters().await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].source_queue, legacy);
    assert!(
        letters[0].reason.contains("not an event envelope"),
        "{letters:?}"
    );

    // A click from now on is counted once, by the fan-out alone.
    assert_eq!(
        env.visit("legacy", user_agents::CHROME_WINDOWS)
            .await
            .status(),
        StatusCode::FOUND
    );
    eventually("the new click counted", DEADLINE, || async {
        (visits(&acme, &link_id).await.0 >= 4).then_some(())
    })
    .await;
    tokio::time::sleep(SETTLE).await;
    assert_eq!(visits(&acme, &link_id).await, (4, 1));

    fanout.start_kill().ok();
    let _ = fanout.wait().await;
    let _ = channel.close(200, "").await;
    broker.close().await;
    env.stop().await;
}
