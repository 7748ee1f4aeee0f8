//! The redirect path: caches that follow changes, QR codes, visitor enrichment, bots, expiry,
//! and a buffer that loses no click across a broker outage (visit counts: `visit_counts.rs`).

use std::collections::BTreeMap;
use std::time::Duration;

use linkkit::Service;
use linkkit_tests::{eventually, user_agents, FaultProxy, Receiver, TestEnv, TestWorkspace};
use reqwest::StatusCode;
use serde::Serialize;
use serde_json::{json, Value};

const DEADLINE: Duration = Duration::from_secs(30);

async fn link(workspace: &TestWorkspace, slug: &str, extra: Value) -> Value {
    let mut body = json!({"destination_url": format!("https://example.com/{slug}"), "slug": slug});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    workspace.api.add_link(body).await
}

fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_and_a_delete_reach_every_redirect_process_within_a_second() {
    let env = TestEnv::start_parts(&[], &[Service::All, Service::Redirect]).await;
    assert_eq!(env.redirect_urls.len(), 2);
    let acme = env.create_workspace("Acme").await;
    let created = link(&acme, "moving", json!({})).await;
    let path = format!("/links/{}", created["id"].as_str().unwrap());
    for redirect in &env.redirect_urls {
        // Warm every cache layer of both processes.
        for _ in 0..3 {
            let visit = env
                .visit_at(redirect, "moving", user_agents::CHROME_WINDOWS, &[])
                .await;
            assert_eq!(location(&visit), "https://example.com/moving");
        }
    }

    acme.api
        .patch(
            &path,
            json!({"destination_url": "https://example.com/moved"}),
        )
        .await;
    for redirect in &env.redirect_urls {
        eventually(
            "the new destination on every process",
            Duration::from_secs(1),
            || async {
                let visit = env
                    .visit_at(redirect, "moving", user_agents::CHROME_WINDOWS, &[])
                    .await;
                (location(&visit) == "https://example.com/moved").then_some(())
            },
        )
        .await;
    }
    acme.api.patch(&path, json!({"slug": "renamed"})).await;
    for redirect in &env.redirect_urls {
        eventually(
            "the old slug gone and the new one live",
            Duration::from_secs(1),
            || async {
                let old = env
                    .visit_at(redirect, "moving", user_agents::CHROME_WINDOWS, &[])
                    .await
                    .status();
                let new = env
                    .visit_at(redirect, "renamed", user_agents::CHROME_WINDOWS, &[])
                    .await
                    .status();
                (old == StatusCode::NOT_FOUND && new == StatusCode::FOUND).then_some(())
            },
        )
        .await;
    }
    acme.api.delete(&path).await;
    for redirect in &env.redirect_urls {
        eventually("410 on every process", Duration::from_secs(1), || async {
            let visit = env
                .visit_at(redirect, "renamed", user_agents::CHROME_WINDOWS, &[])
                .await;
            (visit.status() == StatusCode::GONE).then_some(())
        })
        .await;
    }
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_qr_code_decodes_back_to_the_short_url_marked_as_a_scan() {
    let env = TestEnv::start().await;
    let acme = env.create_workspace("Acme").await;
    let created = link(&acme, "poster", json!({})).await;
    let id = created["id"].as_str().unwrap();
    assert!(created["qr_url"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/api/v1/links/{id}/qr")));

    let client = reqwest::Client::new();
    let fetch = |query: &'static str| {
        client
            .get(format!("{}/api/v1/links/{id}/qr{query}", env.api_url))
            .bearer_auth(&acme.key)
            .send()
    };
    let png = fetch("?format=png&size=300&margin=2&level=H&fg=1a2b3c&bg=ffffff")
        .await
        .unwrap();
    assert_eq!(png.status(), StatusCode::OK);
    assert_eq!(png.headers()["content-type"], "image/png");
    let image = image::load_from_memory(&png.bytes().await.unwrap())
        .unwrap()
        .to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(image);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the image");
    let (_, content) = grids[0].decode().unwrap();
    assert_eq!(content, "https://lkkt.in/poster?qr=1");

    let svg = fetch("").await.unwrap();
    assert_eq!(svg.headers()["content-type"], "image/svg+xml");
    assert!(svg.text().await.unwrap().starts_with("<svg"));
    for bad in [
        "?format=gif",
        "?size=10",
        "?level=Z",
        "?fg=red",
        "?margin=99",
    ] {
        let response = client
            .get(format!("{}/api/v1/links/{id}/qr{bad}", env.api_url))
            .bearer_auth(&acme.key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
    let other = env.create_workspace("Other").await;
    let (status, _) = other.api.get(&format!("/links/{id}/qr")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    env.stop().await;
}

#[derive(Serialize)]
struct CountryRecord {
    country: Country,
}

#[derive(Serialize)]
struct Country {
    iso_code: String,
    names: BTreeMap<String, String>,
}

/// A GeoLite2-Country-shaped database: loopback is "India", 81.2.69.0/24 is "Sweden".
fn write_geoip_database() -> std::path::PathBuf {
    let mut writer = mmdb_writer::Writer::new("GeoLite2-Country");
    for (range, code, name) in [
        ("127.0.0.0/8", "IN", "India"),
        ("81.2.69.0/24", "SE", "Sweden"),
    ] {
        let record = CountryRecord {
            country: Country {
                iso_code: code.into(),
                names: [("en".to_owned(), name.to_owned())].into(),
            },
        };
        writer
            .insert(range.parse::<ipnet::IpNet>().unwrap(), &record)
            .unwrap();
    }
    let path = std::env::temp_dir().join(format!(
        "linkkit-geo-{}.mmdb",
        uuid::Uuid::now_v7().simple()
    ));
    std::fs::write(&path, writer.to_bytes().unwrap()).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_country_comes_from_a_geoip_database_and_forwarded_addresses_only_from_trusted_proxies()
{
    let database = write_geoip_database();
    let env = TestEnv::start_with(&[
        ("LINKKIT_GEOIP_DB", database.to_str().unwrap()),
        ("LINKKIT_TRUST_PROXY_HEADERS", "true"),
        ("LINKKIT_TRUSTED_PROXIES", "127.0.0.0/8"),
    ])
    .await;
    let receiver = Receiver::start().await;
    let acme = env.create_workspace("Acme").await;
    acme.api
        .add_endpoint(&receiver.url, &["link.clicked"])
        .await;
    link(&acme, "geo", json!({})).await;

    env.visit_at(&env.redirect_url, "geo", user_agents::CHROME_WINDOWS, &[])
        .await;
    receiver.wait_for(1, DEADLINE).await;
    env.visit_at(
        &env.redirect_url,
        "geo",
        user_agents::CHROME_WINDOWS,
        &[("x-forwarded-for", "9.9.9.9, 81.2.69.160")],
    )
    .await;
    let received = receiver.wait_for(2, DEADLINE).await;
    assert_eq!(
        received[0].json["data"]["click_location"], "India",
        "the peer address"
    );
    assert_eq!(
        received[1].json["data"]["click_location"], "Sweden",
        "the client behind a trusted proxy"
    );
    for visit in &received {
        let body = String::from_utf8_lossy(&visit.body);
        assert!(
            !body.contains("127.0.0.1") && !body.contains("81.2.69.160"),
            "no visitor IP in an event"
        );
    }
    env.stop().await;
    let _ = std::fs::remove_file(database);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cdn_country_header_counts_only_when_proxy_headers_are_trusted() {
    for (trusted, expected) in [("true", "Germany"), ("false", "Unknown")] {
        let env = TestEnv::start_with(&[
            ("LINKKIT_TRUST_PROXY_HEADERS", trusted),
            ("LINKKIT_TRUSTED_PROXIES", "127.0.0.0/8"),
        ])
        .await;
        let receiver = Receiver::start().await;
        let acme = env.create_workspace("Acme").await;
        acme.api
            .add_endpoint(&receiver.url, &["link.clicked"])
            .await;
        link(&acme, "cdn", json!({})).await;
        env.visit_at(
            &env.redirect_url,
            "cdn",
            user_agents::IPHONE,
            &[("cf-ipcountry", "DE"), ("referer", "https://news.example/")],
        )
        .await;
        let received = receiver.wait_for(1, DEADLINE).await;
        let data = &received[0].json["data"];
        assert_eq!(data["click_location"], expected, "trusted={trusted}");
        assert_eq!(data["referrer"], "https://news.example/");
        assert_eq!(data["browser"], "Safari");
        env.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bots_and_head_requests_are_redirected_without_an_event_unless_bots_are_tracked() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    let acme = env.create_workspace("Acme").await;
    acme.api
        .add_endpoint(&receiver.url, &["link.clicked"])
        .await;
    link(&acme, "shared", json!({})).await;

    for bot in [
        user_agents::SLACKBOT,
        "facebookexternalhit/1.1",
        "WhatsApp/2.23",
        "Twitterbot/1.0",
        "curl/8.5.0",
        "Mozilla/5.0 (compatible; Googlebot/2.1)",
    ] {
        assert_eq!(
            env.visit("shared", bot).await.status(),
            StatusCode::FOUND,
            "{bot} is redirected"
        );
    }
    let head = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let head = head
        .head(format!("{}/shared", env.redirect_url))
        .header("user-agent", user_agents::IPHONE)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::FOUND);
    env.visit("shared", user_agents::IPHONE).await;
    receiver.wait_for(1, DEADLINE).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        receiver.received().len(),
        1,
        "only the human GET emits an event"
    );
    env.stop().await;

    let env = TestEnv::start_with(&[("LINKKIT_TRACK_BOTS", "true")]).await;
    let receiver = Receiver::start().await;
    let acme = env.create_workspace("Acme").await;
    acme.api
        .add_endpoint(&receiver.url, &["link.clicked"])
        .await;
    link(&acme, "tracked", json!({})).await;
    env.visit("tracked", user_agents::SLACKBOT).await;
    let received = receiver.wait_for(1, DEADLINE).await;
    assert_eq!(received[0].json["data"]["device"], "Bot");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_link_answers_410_and_emits_nothing() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    let acme = env.create_workspace("Acme").await;
    acme.api
        .add_endpoint(&receiver.url, &["link.clicked"])
        .await;
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    link(&acme, "flash", json!({"expires_at": soon})).await;
    assert_eq!(
        env.visit("flash", user_agents::IPHONE).await.status(),
        StatusCode::FOUND
    );
    receiver.wait_for(1, DEADLINE).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        env.visit("flash", user_agents::IPHONE).await.status(),
        StatusCode::GONE
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        receiver.received().len(),
        1,
        "the visit after expiry emitted nothing"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clicks_during_a_broker_outage_all_arrive_once_it_is_back() {
    let proxy = FaultProxy::rabbitmq().await;
    let env = TestEnv::start_with(&[("LINKKIT_AMQP_URL", proxy.url.as_str())]).await;
    let receiver = Receiver::start().await;
    let acme = env.create_workspace("Acme").await;
    acme.api
        .add_endpoint(&receiver.url, &["link.clicked"])
        .await;
    link(&acme, "outage", json!({})).await;
    env.visit("outage", user_agents::CHROME_WINDOWS).await;
    receiver.wait_for(1, DEADLINE).await;

    proxy.cut().await;
    for _ in 0..200 {
        assert_eq!(
            env.visit("outage", user_agents::CHROME_WINDOWS)
                .await
                .status(),
            StatusCode::FOUND
        );
    }
    proxy.restore();
    // Every click, the 200 made while the broker was away included, arrives exactly once.
    receiver.wait_for_distinct(201, DEADLINE).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received().len(), 201);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clicks_beyond_the_buffer_are_counted_as_dropped_never_lost_silently() {
    let proxy = FaultProxy::rabbitmq().await;
    let env = TestEnv::start_with(&[
        ("LINKKIT_AMQP_URL", proxy.url.as_str()),
        ("LINKKIT_EVENT_BUFFER", "10"),
    ])
    .await;
    let receiver = Receiver::start().await;
    let acme = env.create_workspace("Acme").await;
    acme.api
        .add_endpoint(&receiver.url, &["link.clicked"])
        .await;
    link(&acme, "tight", json!({})).await;
    // Metrics are per process and tests share this one; only this test drops events.
    let dropped = || env.metric("linkkit_events_dropped_total");
    let before = dropped().await;

    proxy.cut().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    const CLICKS: usize = 60;
    for _ in 0..CLICKS {
        assert_eq!(
            env.visit("tight", user_agents::CHROME_WINDOWS)
                .await
                .status(),
            StatusCode::FOUND
        );
    }
    proxy.restore();
    let lost = dropped().await - before;
    assert!(lost > 0, "a buffer of 10 cannot hold {CLICKS} clicks");
    let delivered = eventually("every buffered click delivered", DEADLINE, || async {
        let delivered = receiver.distinct_ids().len();
        (delivered as u64 + lost == CLICKS as u64).then_some(delivered)
    })
    .await;
    assert!(
        delivered >= 10,
        "what fit in the buffer arrived ({delivered})"
    );
    env.stop().await;
}
