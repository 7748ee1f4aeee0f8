//! Parking in Postgres: once a sender has opened an endpoint's circuit, the jobs of that
//! endpoint wait on their delivery rows, not in the broker. The fan-out stores its new
//! deliveries parked, a sender parks the jobs it turns away, and each sender's sweep publishes
//! them when they are due. None is lost, none is sent twice, a resend or a disabled endpoint
//! while they wait does what it does to any delivery, a sweep that dies before it commits
//! releases nothing, and a parked delivery whose event cannot be read turns dead. What is
//! parked is read from each test's own database: the metrics of this binary are shared by its
//! tests.

use std::time::Duration;

use chrono::Utc;
use linkkit_cache::parked::ParkedEndpoints;
use linkkit_core::event::sample;
use linkkit_core::{EndpointId, Envelope, EventType, WorkspaceId};
use linkkit_store::deliveries::{self, NewEvent, StoredEvent};
use linkkit_store::endpoints::Subscribers;
use linkkit_store::parked::{self, Unparked};
use linkkit_tests::{eventually, Receiver, TestEnv, TestWorkspace};
use reqwest::StatusCode;
use serde_json::{json, Value};

const DEADLINE: Duration = Duration::from_secs(60);

fn clicks(count: usize) -> Vec<Envelope> {
    (0..count).map(|_| sample(EventType::LinkClicked)).collect()
}

fn event_ids(events: &[Envelope]) -> Vec<String> {
    events.iter().map(|e| e.id.to_string()).collect()
}

/// An environment whose retries come back after a second, a workspace and an endpoint whose
/// receiver answers 500 until told otherwise, and a circuit a sender has opened on it (after
/// failing clicks), known to the fan-out.
async fn endpoint_with_open_circuit() -> (TestEnv, Receiver, TestWorkspace, Value, Vec<Envelope>) {
    let env = TestEnv::start_with(&[("LINKKIT_RETRY_SCHEDULE", &["1s"; 30].join(","))]).await;
    let receiver = Receiver::start().await;
    receiver.respond_otherwise(500);
    let acme = env.create_workspace("Acme").await;
    let endpoint = acme
        .api
        .add_endpoint(&receiver.url, &["link.clicked"])
        .await;
    let endpoint_id = EndpointId::parse(endpoint["id"].as_str().unwrap()).unwrap();
    let early = clicks(8);
    env.publish_events(&acme.id, &early).await;
    // The metrics are shared by every test of this binary, so what shows that this
    // environment's sender opened the circuit is its notice in this environment's Redis
    // namespace, the one its fan-out reads.
    let redis = linkkit_cache::Redis::connect(&env.variables["LINKKIT_REDIS_URL"]).unwrap();
    let notices = ParkedEndpoints::new(redis, &env.config.namespace);
    eventually(
        "a sender opens the circuit and tells the fan-out",
        DEADLINE,
        || async {
            let parked = notices.current(Utc::now()).await.ok()?;
            parked.contains_key(&endpoint_id).then_some(())
        },
    )
    .await;
    // The fan-out reads the parked endpoints four times a second.
    tokio::time::sleep(Duration::from_millis(600)).await;
    (env, receiver, acme, endpoint, early)
}

/// Whether none of `events` has reached the receiver, answered or not.
/// Stores `events` with one delivery each to `endpoint`, parked for `wait`, as the fan-out
/// stores them for an endpoint a sender is parking.
async fn store_parked(
    env: &TestEnv,
    workspace: &WorkspaceId,
    endpoint: &EndpointId,
    events: &[Envelope],
    wait: Duration,
) -> Vec<StoredEvent> {
    let new_events: Vec<NewEvent> = events
        .iter()
        .map(|event| NewEvent {
            workspace_id: workspace.clone(),
            event: event.clone(),
            subscribers: Subscribers {
                enabled: vec![endpoint.clone()],
                disabled: vec![],
            },
            visit: None,
            parked_for: [(endpoint.clone(), wait)].into(),
        })
        .collect();
    deliveries::create_for_events(&env.pool, &new_events)
        .await
        .unwrap()
}

fn none_arrived(receiver: &Receiver, events: &[Envelope]) -> bool {
    let ids = event_ids(events);
    receiver.distinct_ids().iter().all(|id| !ids.contains(id))
}

/// How many of `events`' deliveries are parked in Postgres.
async fn parked_count(env: &TestEnv, events: &[Envelope]) -> i64 {
    let (count,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM deliveries WHERE event_id = ANY($1) AND parked_until IS NOT NULL",
    )
    .bind(event_ids(events))
    .fetch_one(&env.pool)
    .await
    .unwrap();
    count
}

/// For each of `events`' deliveries: its id, status, and how many of its attempts succeeded.
async fn outcomes(env: &TestEnv, events: &[Envelope]) -> Vec<(String, String, i64)> {
    sqlx::query_as(
        "SELECT d.id, d.status, count(a.id) FILTER (WHERE a.status_code BETWEEN 200 AND 299) \
         FROM deliveries d LEFT JOIN delivery_attempts a ON a.delivery_id = d.id \
         WHERE d.event_id = ANY($1) GROUP BY d.id, d.status ORDER BY d.id",
    )
    .bind(event_ids(events))
    .fetch_all(&env.pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_of_an_open_circuit_wait_in_postgres_and_are_each_sent_once_when_it_answers() {
    let (env, receiver, acme, _endpoint, early) = endpoint_with_open_circuit().await;

    let late = clicks(20);
    let parked_before = env.metric("linkkit_fanout_jobs_parked_total").await;
    env.publish_events(&acme.id, &late).await;
    eventually(
        "the fan-out stores the new deliveries parked",
        DEADLINE,
        || async { (parked_count(&env, &late).await == late.len() as i64).then_some(()) },
    )
    .await;
    eventually("the fan-out to count what it parked", DEADLINE, || async {
        let parked = env.metric("linkkit_fanout_jobs_parked_total").await;
        (parked >= parked_before + late.len() as u64).then_some(())
    })
    .await;
    assert!(
        none_arrived(&receiver, &late),
        "no parked delivery was tried"
    );

    // A resend while it waits replaces the parked job: one send, in the new generation.
    let resent = outcomes(&env, &late[..1]).await[0].0.clone();
    let (status, body) = acme
        .api
        .post(&format!("/deliveries/{resent}/resend"), json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    receiver.respond_otherwise(200);
    let delivered = receiver
        .wait_for_distinct(early.len() + late.len(), DEADLINE)
        .await;
    for event in early.iter().chain(&late) {
        assert!(
            delivered.contains(event.id.as_str()),
            "{} was lost",
            event.id
        );
    }
    eventually("every delivery to be settled", DEADLINE, || async {
        let all = outcomes(&env, &late).await;
        all.iter()
            .all(|(_, status, _)| status == "succeeded")
            .then_some(())
    })
    .await;
    // Past the shortest park, so a second copy of any job would have been swept by now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (id, status, successes) in outcomes(&env, &late).await {
        assert_eq!(
            (status.as_str(), successes),
            ("succeeded", 1),
            "delivery {id} is sent exactly once"
        );
    }
    assert_eq!(parked_count(&env, &late).await, 0, "nothing left parked");
    assert!(
        env.metric("linkkit_parked_swept_total{outcome=\"published\"}")
            .await
            > 0
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_deliveries_of_an_endpoint_disabled_meanwhile_turn_dead_and_replay_once_enabled() {
    let (env, receiver, acme, endpoint, _early) = endpoint_with_open_circuit().await;
    let late = clicks(5);
    env.publish_events(&acme.id, &late).await;
    eventually("the new deliveries to be parked", DEADLINE, || async {
        (parked_count(&env, &late).await == late.len() as i64).then_some(())
    })
    .await;

    let path = format!("/webhooks/{}", endpoint["id"].as_str().unwrap());
    let (status, body) = acme.api.patch(&path, json!({"enabled": false})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    receiver.respond_otherwise(200);
    eventually(
        "the parked deliveries to turn dead when due",
        DEADLINE,
        || async {
            let all = outcomes(&env, &late).await;
            all.iter()
                .all(|(_, status, _)| status == "dead")
                .then_some(())
        },
    )
    .await;
    assert!(
        none_arrived(&receiver, &late),
        "a disabled endpoint gets nothing"
    );
    let letters = env.dead_letters().await;
    for event in &late {
        let letter = letters
            .iter()
            .find(|letter| String::from_utf8_lossy(&letter.body).contains(event.id.as_str()))
            .unwrap_or_else(|| panic!("{} is in the dead-letter queue", event.id));
        assert!(
            letter.reason.contains("endpoint disabled"),
            "{}",
            letter.reason
        );
    }

    let (status, body) = acme.api.patch(&path, json!({"enabled": true})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, replayed) = acme.api.post(&format!("{path}/replay"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{replayed}");
    eventually("every dead delivery to be replayed", DEADLINE, || async {
        let delivered = receiver.distinct_ids();
        late.iter()
            .all(|event| delivered.contains(event.id.as_str()))
            .then_some(())
    })
    .await;
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_that_dies_before_it_commits_releases_nothing_and_sweeps_never_share_a_row() {
    // Postgres alone: no sender runs a sweep of its own here.
    let env = TestEnv::start_parts(&[], &[]).await;
    let workspace = WorkspaceId::generate();
    let endpoint = EndpointId::generate();
    let events = clicks(3);
    let stored = store_parked(&env, &workspace, &endpoint, &events, Duration::ZERO).await;
    assert!(
        stored
            .iter()
            .all(|s| s.parked == 1 && s.deliveries.is_empty()),
        "stored parked, with no job to publish now: {stored:?}"
    );

    let (first, taken) = parked::take_due(&env.pool, 2).await.unwrap();
    assert_eq!(taken.len(), 2);
    assert!(taken.iter().all(|d| d.attempt == 1 && d.event.is_some()));
    let (second, rest) = parked::take_due(&env.pool, 10).await.unwrap();
    assert_eq!(
        rest.len(),
        1,
        "a second sweep skips the rows the first holds"
    );
    assert!(taken.iter().all(|d| d.id != rest[0].id));
    drop(second);
    drop(first);
    // A dropped transaction is rolled back when its connection goes back to the pool, a moment
    // later; until then its rows stay locked. Rows a dropped sweep had released would never
    // all be due again.
    let (again, all) = eventually(
        "the rows of the dropped sweeps to be due again, all of them",
        DEADLINE,
        || async {
            let (sweep, rows) = parked::take_due(&env.pool, 10).await.unwrap();
            if rows.len() == 3 {
                return Some((sweep, rows));
            }
            sweep.finish(&[]).await.unwrap();
            None
        },
    )
    .await;

    again
        .finish(&[
            Unparked::Released(all[0].id.clone()),
            Unparked::ParkedAgain(all[1].id.clone(), Duration::from_secs(60)),
        ])
        .await
        .unwrap();
    let (none_left, due_now) = parked::take_due(&env.pool, 10).await.unwrap();
    assert_eq!(
        due_now.iter().map(|d| &d.id).collect::<Vec<_>>(),
        vec![&all[2].id],
        "released and parked-again deliveries are not due; the one left unfinished is"
    );
    none_left.finish(&[]).await.unwrap();
    assert_eq!(parked::count(&env.pool).await.unwrap(), 2);

    // A sender's park of a stale job (another generation) changes nothing.
    let resent = &all[1].id;
    deliveries::start_generation(&env.pool, resent)
        .await
        .unwrap();
    let parked_now = parked::park(
        &env.pool,
        &[parked::ParkRequest {
            delivery_id: resent.clone(),
            generation: 0,
            attempt: 1,
            wait: Duration::from_secs(60),
        }],
    )
    .await
    .unwrap();
    assert_eq!(parked_now, vec![false]);
    assert_eq!(
        parked::count(&env.pool).await.unwrap(),
        1,
        "a resend unparks"
    );

    // A stale copy of an earlier attempt never sets the parked attempt back.
    let waiting = &all[2].id;
    for attempt in [3, 1] {
        let parked_now = parked::park(
            &env.pool,
            &[parked::ParkRequest {
                delivery_id: waiting.clone(),
                generation: 0,
                attempt,
                wait: Duration::ZERO,
            }],
        )
        .await
        .unwrap();
        assert_eq!(parked_now, vec![true]);
    }
    let (held, found) = parked::take_due(&env.pool, 10).await.unwrap();
    assert_eq!(
        found.iter().map(|d| (&d.id, d.attempt)).collect::<Vec<_>>(),
        vec![(waiting, 3)]
    );
    held.finish(&[]).await.unwrap();

    // A delivery whose event cannot be read is not handed out, nor left at the head of the
    // queue: it turns dead, where it is visible.
    sqlx::query("UPDATE events SET payload = '{\"not\": \"an envelope\"}' WHERE id = $1")
        .bind(all[2].event.as_ref().unwrap().id.as_str())
        .execute(&env.pool)
        .await
        .unwrap();
    let (held, found) = parked::take_due(&env.pool, 10).await.unwrap();
    assert!(found.is_empty(), "{found:?}");
    held.finish(&[]).await.unwrap();
    let (status, parked_until): (String, Option<chrono::DateTime<Utc>>) =
        sqlx::query_as("SELECT status, parked_until FROM deliveries WHERE id = $1")
            .bind(waiting.as_str())
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!((status.as_str(), parked_until), ("dead", None));
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_senders_sweep_turns_a_parked_delivery_whose_event_cannot_be_read_dead() {
    let env = TestEnv::start().await;
    let event = sample(EventType::LinkClicked);
    store_parked(
        &env,
        &WorkspaceId::generate(),
        &EndpointId::generate(),
        std::slice::from_ref(&event),
        Duration::from_secs(3600),
    )
    .await;
    // Spoiled while it waits, then due: the only row of the sweep, and no job can be made of it.
    sqlx::query("UPDATE events SET payload = '[]' WHERE id = $1")
        .bind(event.id.as_str())
        .execute(&env.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE deliveries SET parked_until = now() WHERE event_id = $1")
        .bind(event.id.as_str())
        .execute(&env.pool)
        .await
        .unwrap();
    eventually("the sweep to mark the delivery dead", DEADLINE, || async {
        let (status, parked_until): (String, Option<chrono::DateTime<Utc>>) =
            sqlx::query_as("SELECT status, parked_until FROM deliveries WHERE event_id = $1")
                .bind(event.id.as_str())
                .fetch_one(&env.pool)
                .await
                .unwrap();
        (status == "dead" && parked_until.is_none()).then_some(())
    })
    .await;
    env.stop().await;
}
