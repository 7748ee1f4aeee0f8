//! Every broker connection is closed mid-run (`rabbitmqctl close_all_connections`): nothing is
//! lost and the workers resume by themselves.
//!
//! This file holds one test on purpose: closing *all* connections would disturb other tests
//! running beside it, and cargo runs test binaries one after the other.

use std::time::Duration;

use linkkit_core::event::sample;
use linkkit_core::EventType;
use linkkit_tests::{Receiver, TestEnv};

const EVENTS: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_every_broker_connection_mid_run_loses_nothing() {
    // Slow enough (8 at a time, 50 ms each) that the connections close while most events are
    // still on their way.
    let env = TestEnv::start_with(&[
        ("LINKKIT_RETRY_SCHEDULE", "1s,1s,1s,1s,1s"),
        ("LINKKIT_SENDER_CONCURRENCY", "8"),
    ])
    .await;
    let receiver = Receiver::start().await;
    receiver.delay_answers(Duration::from_millis(50));
    let acme = env.create_workspace("Acme").await;
    acme.api
        .add_endpoint(&receiver.url, &["link.clicked"])
        .await;

    let events: Vec<_> = (0..EVENTS)
        .map(|_| sample(EventType::LinkClicked))
        .collect();
    env.publish_events(&acme.id, &events).await;
    receiver
        .wait_for(EVENTS / 10, Duration::from_secs(60))
        .await;

    let closed = tokio::process::Command::new("rabbitmqctl")
        .args(["close_all_connections", "linkkit fault test"])
        .output()
        .await
        .expect("rabbitmqctl runs");
    assert!(
        closed.status.success(),
        "rabbitmqctl: {}",
        String::from_utf8_lossy(&closed.stderr)
    );
    assert!(
        receiver.received().len() < EVENTS,
        "the connections closed mid-run"
    );

    let ids = receiver
        .wait_for_distinct(EVENTS, Duration::from_secs(120))
        .await;
    for event in &events {
        assert!(ids.contains(event.id.as_str()), "{} was lost", event.id);
    }
    // The workers resumed by themselves: a new event still flows end to end.
    let after = sample(EventType::LinkClicked);
    env.publish_events(&acme.id, std::slice::from_ref(&after))
        .await;
    let ids = receiver
        .wait_for_distinct(EVENTS + 1, Duration::from_secs(60))
        .await;
    assert!(ids.contains(after.id.as_str()));
    env.stop().await;
}
