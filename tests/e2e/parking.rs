//! Parking shared between the stages: once a sender has opened an endpoint's circuit, the
//! fan-out sends that endpoint's new jobs straight to a retry queue instead of through the
//! senders, and every one of them is still delivered when the endpoint answers again. A binary
//! of its own, so the metrics it reads are this test's alone.

use std::time::Duration;

use linkkit_core::event::sample;
use linkkit_core::{Envelope, EventType};
use linkkit_tests::{eventually, Receiver, TestEnv};

const DEADLINE: Duration = Duration::from_secs(45);

fn clicks(count: usize) -> Vec<Envelope> {
    (0..count).map(|_| sample(EventType::LinkClicked)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_a_sender_opens_a_circuit_the_fanout_parks_the_endpoints_new_jobs_and_none_is_lost() {
    let env = TestEnv::start_with(&[("LINKKIT_RETRY_SCHEDULE", &["1s"; 30].join(","))]).await;
    let receiver = Receiver::start().await;
    receiver.respond_otherwise(500);
    let acme = env.create_workspace("Acme").await;
    acme.api
        .add_endpoint(&receiver.url, &["link.clicked"])
        .await;

    let early = clicks(8);
    env.publish_events(&acme.id, &early).await;
    eventually(
        "a sender opens the circuit and parks a job",
        DEADLINE,
        || async {
            let deferred = env
                .metric("linkkit_jobs_deferred_total{reason=\"circuit_open\"}")
                .await;
            (deferred > 0).then_some(())
        },
    )
    .await;
    assert_eq!(
        env.metric("linkkit_fanout_jobs_parked_total").await,
        0,
        "nothing parked by the fan-out before a sender said so"
    );

    // The fan-out reads the parked endpoints four times a second.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let late = clicks(20);
    env.publish_events(&acme.id, &late).await;
    eventually(
        "the fan-out parks the new jobs itself",
        DEADLINE,
        || async {
            let parked = env.metric("linkkit_fanout_jobs_parked_total").await;
            (parked >= late.len() as u64).then_some(())
        },
    )
    .await;

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
    env.stop().await;
}
