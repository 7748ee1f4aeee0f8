//! What happens when the broker goes away: the outbox keeps link events, the redirect keeps
//! answering, and poison messages never block a queue.

use std::time::Duration;

use linkkit_bus::{Broker, Outgoing, Publisher};
use linkkit_tests::{eventually, user_agents, FaultProxy, Receiver, TestEnv};
use reqwest::StatusCode;
use serde_json::json;

const DEADLINE: Duration = Duration::from_secs(40);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_saved_while_the_broker_is_down_is_published_once_it_is_back() {
    let proxy = FaultProxy::rabbitmq().await;
    let env = TestEnv::start_with(&[("LINKKIT_AMQP_URL", proxy.url.as_str())]).await;
    let receiver = Receiver::start().await;
    let acme = env.create_workspace("Acme").await;
    acme.api
        .add_endpoint(&receiver.url, &["link.created", "link.clicked"])
        .await;
    // The pipeline works before the outage.
    acme.api
        .add_link(json!({"destination_url": "https://example.com/before", "slug": "before"}))
        .await;
    receiver.wait_for(1, DEADLINE).await;
    // The webhook can arrive before the broker's confirm reaches the relay; the outbox row goes
    // only once that confirm is in (cut before it, and the event is simply published again).
    eventually(
        "the outbox to drain before the outage",
        DEADLINE,
        || async { (linkkit_store::outbox::pending(&env.pool).await.unwrap() == 0).then_some(()) },
    )
    .await;

    proxy.cut().await;
    let (status, link) = acme
        .api
        .post(
            "/links",
            json!({"destination_url": "https://example.com/during", "slug": "during"}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "saving a link never waits for the broker: {link}"
    );
    let click = env.visit("during", user_agents::CHROME_WINDOWS).await;
    assert_eq!(
        click.status(),
        StatusCode::FOUND,
        "redirects never wait for the broker"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        linkkit_store::outbox::pending(&env.pool).await.unwrap(),
        1,
        "the event waits in the outbox"
    );
    let during_outage: Vec<String> = receiver
        .received()
        .iter()
        .map(|r| format!("{} {}", r.event_type(), r.json["data"]))
        .collect();
    assert_eq!(
        during_outage.len(),
        1,
        "nothing new arrives: {during_outage:?}"
    );

    proxy.restore();
    let received = receiver.wait_for(3, DEADLINE).await;
    let slugs_created: Vec<&str> = received
        .iter()
        .filter(|r| r.event_type() == "link.created")
        .map(|r| r.json["data"]["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs_created, ["before", "during"]);
    assert!(
        received.iter().any(|r| r.event_type() == "link.clicked"),
        "the buffered click arrives too"
    );
    eventually("the outbox to drain", DEADLINE, || async {
        (linkkit_store::outbox::pending(&env.pool).await.unwrap() == 0).then_some(())
    })
    .await;
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unparseable_event_is_dead_lettered_with_its_reason_and_the_next_one_still_flows() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    let acme = env.create_workspace("Acme").await;
    acme.api
        .add_endpoint(&receiver.url, &["link.created"])
        .await;

    let namespace = env.config.namespace.clone();
    let publisher = Publisher::new(
        Broker::new(linkkit_tests::TestEnv::amqp_url()),
        env.topology(),
    );
    let poison = Outgoing {
        exchange: namespace.events_exchange(),
        routing_key: "link.created".into(),
        body: b"{this is not an envelope".to_vec(),
        headers: vec![(linkkit_bus::WORKSPACE_HEADER, acme.id.clone())],
    };
    publisher.publish(poison).await.unwrap();
    acme.api
        .add_link(json!({"destination_url": "https://example.com/after-poison"}))
        .await;

    let received = receiver.wait_for(1, DEADLINE).await;
    assert_eq!(received[0].event_type(), "link.created");
    let dead = env.dead_letters().await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, b"{this is not an envelope");
    assert!(
        dead[0].reason.contains("not an event envelope"),
        "{}",
        dead[0].reason
    );
    assert_eq!(dead[0].source_queue, namespace.fanout_queue());
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_redis_costs_no_delivery_and_readiness_recovers_by_itself() {
    let proxy = FaultProxy::redis().await;
    let env = TestEnv::start_with(&[("LINKKIT_REDIS_URL", proxy.url.as_str())]).await;
    let receiver = Receiver::start().await;
    let acme = env.create_workspace("Acme").await;
    acme.api
        .add_endpoint(&receiver.url, &["link.clicked"])
        .await;
    let readyz = || async {
        let response = reqwest::get(format!("{}/readyz", env.admin_url))
            .await
            .unwrap();
        response.status()
    };
    assert_eq!(readyz().await, StatusCode::OK);

    proxy.cut().await;
    acme.api
        .add_link(json!({"destination_url": "https://example.com/x", "slug": "no-redis"}))
        .await;
    env.visit("no-redis", user_agents::CHROME_WINDOWS).await;
    receiver.wait_for(1, DEADLINE).await;
    assert_eq!(readyz().await, StatusCode::SERVICE_UNAVAILABLE);

    proxy.restore();
    eventually("readiness to recover", DEADLINE, || async {
        (readyz().await == StatusCode::OK).then_some(())
    })
    .await;
    env.visit("no-redis", user_agents::CHROME_WINDOWS).await;
    receiver.wait_for(2, DEADLINE).await;
    env.stop().await;
}
