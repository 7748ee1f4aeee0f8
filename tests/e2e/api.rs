//! The HTTP API's contract: every error case answered with the JSON error of SPEC §5, list
//! pagination, and one workspace never seeing another's objects.

use linkkit_tests::{TestEnv, TestWorkspace};
use reqwest::StatusCode;
use serde_json::{json, Value};

fn assert_error(status: StatusCode, body: &Value, expected: StatusCode, words: &str) {
    assert_eq!(status, expected, "{body}");
    let message = body["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no error message in {body}"));
    assert!(body["error"]["code"].is_string(), "{body}");
    assert!(
        message.contains(words),
        "`{message}` should mention `{words}`"
    );
}

async fn setup() -> (TestEnv, TestWorkspace) {
    let env = TestEnv::start_with(&[("LINKKIT_ALLOW_PRIVATE_TARGETS", "false")]).await;
    let workspace = env.create_workspace("Acme").await;
    (env, workspace)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_link_input_is_refused_with_a_json_error_naming_the_problem() {
    let (env, acme) = setup().await;
    let cases = [
        (
            json!({"destination_url": "ftp://example.com/file"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "http",
        ),
        (
            json!({"destination_url": "not a url"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "destination_url",
        ),
        (
            json!({"destination_url": "javascript:alert(1)"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "http",
        ),
        (
            json!({"slug": "no-destination"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "destination_url",
        ),
        (
            json!({"destination_url": 42}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "string",
        ),
        (
            json!({"destination_url": "https://example.com", "slug": "has space"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "slug",
        ),
        (
            json!({"destination_url": "https://example.com", "slug": "a/b"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "slug",
        ),
        (
            json!({"destination_url": "https://example.com", "colour": "red"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "colour",
        ),
        (
            json!({"destination_url": "https://example.com", "expires_at": "2001-01-01T00:00:00Z"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "future",
        ),
        (
            json!({"destination_url": "https://example.com", "tags": [""]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "tag",
        ),
    ];
    for (body, expected, words) in cases {
        let (status, answer) = acme.api.post("/links", body.clone()).await;
        assert_error(status, &answer, expected, words);
    }

    let raw = reqwest::Client::new()
        .post(format!("{}/api/v1/links", env.api_url))
        .bearer_auth(&acme.key)
        .body("{not json")
        .send()
        .await
        .unwrap();
    let status = raw.status();
    assert_error(
        status,
        &raw.json().await.unwrap(),
        StatusCode::BAD_REQUEST,
        "JSON",
    );

    let huge = "x".repeat(70 * 1024);
    let (status, answer) = acme
        .api
        .post(
            "/links",
            json!({"destination_url": format!("https://example.com/{huge}")}),
        )
        .await;
    assert_error(status, &answer, StatusCode::PAYLOAD_TOO_LARGE, "larger");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_slug_is_a_conflict_and_unknown_ids_are_not_found() {
    let (env, acme) = setup().await;
    acme.api
        .add_link(json!({"destination_url": "https://example.com", "slug": "taken"}))
        .await;
    let (status, answer) = acme
        .api
        .post(
            "/links",
            json!({"destination_url": "https://example.com", "slug": "taken"}),
        )
        .await;
    assert_error(status, &answer, StatusCode::CONFLICT, "taken");

    for path in [
        "/links/lnk_00000000000000000000000000000000",
        "/links/nonsense",
        "/webhooks/ep_00000000000000000000000000000000",
        "/deliveries/dlv_00000000000000000000000000000000",
    ] {
        let (status, answer) = acme.api.get(path).await;
        assert_error(status, &answer, StatusCode::NOT_FOUND, "no such");
    }
    let (status, answer) = acme
        .api
        .patch(
            "/links/lnk_00000000000000000000000000000000",
            json!({"campaign": "x"}),
        )
        .await;
    assert_error(status, &answer, StatusCode::NOT_FOUND, "link");
    let (status, answer) = acme
        .api
        .delete("/webhooks/ep_00000000000000000000000000000000")
        .await;
    assert_error(status, &answer, StatusCode::NOT_FOUND, "endpoint");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_endpoint_input_is_refused_including_private_addresses() {
    let (env, acme) = setup().await;
    let cases = [
        (
            json!({"url": "https://hooks.example.com/x", "events": []}),
            "at least one",
        ),
        (
            json!({"url": "https://hooks.example.com/x", "events": ["link.exploded"]}),
            "link.exploded",
        ),
        (json!({"url": "https://hooks.example.com/x"}), "events"),
        (
            json!({"url": "ftp://hooks.example.com/x", "events": ["link.created"]}),
            "http",
        ),
        (
            json!({"url": "http://127.0.0.1:3000/x", "events": ["link.created"]}),
            "public",
        ),
        (
            json!({"url": "http://169.254.169.254/latest", "events": ["link.created"]}),
            "public",
        ),
        (
            json!({"url": "http://localhost/x", "events": ["link.created"]}),
            "public",
        ),
    ];
    for (body, words) in cases {
        let (status, answer) = acme.api.post("/webhooks", body).await;
        assert_error(status, &answer, StatusCode::UNPROCESSABLE_ENTITY, words);
    }
    let endpoint = acme
        .api
        .add_endpoint(
            "https://hooks.example.com/linkkit",
            &["link.created", "link.created"],
        )
        .await;
    assert_eq!(
        endpoint["events"],
        json!(["link.created"]),
        "repeats are dropped"
    );
    assert!(endpoint["secret"].as_str().unwrap().starts_with("whsec_"));
    let (status, answer) = acme
        .api
        .patch(
            &format!("/webhooks/{}", endpoint["id"].as_str().unwrap()),
            json!({"events": []}),
        )
        .await;
    assert_error(
        status,
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "at least one",
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_a_valid_key_are_unauthorized() {
    let (env, acme) = setup().await;
    let anonymous = reqwest::Client::new()
        .get(format!("{}/api/v1/links", env.api_url))
        .send()
        .await
        .unwrap();
    let status = anonymous.status();
    assert_error(
        status,
        &anonymous.json().await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "Authorization",
    );
    let (status, answer) = acme.api.with_key("lk_wrong").get("/links").await;
    assert_error(status, &answer, StatusCode::UNAUTHORIZED, "not valid");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_workspace_gets_404_for_everything_of_another() {
    let (env, a) = setup().await;
    let b = env.create_workspace("B").await;
    let link = a
        .api
        .add_link(json!({"destination_url": "https://example.com/a"}))
        .await;
    let endpoint = a
        .api
        .add_endpoint("https://hooks.example.com/a", &["link.created"])
        .await;
    let link_path = format!("/links/{}", link["id"].as_str().unwrap());
    let endpoint_path = format!("/webhooks/{}", endpoint["id"].as_str().unwrap());

    for path in [
        link_path.clone(),
        endpoint_path.clone(),
        format!("{endpoint_path}/secret"),
        format!("{endpoint_path}/deliveries"),
    ] {
        let (status, _) = b.api.get(&path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "B reading {path}");
    }
    assert_eq!(
        b.api
            .patch(&link_path, json!({"campaign": "stolen"}))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(b.api.delete(&link_path).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        b.api
            .patch(&endpoint_path, json!({"enabled": false}))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(b.api.delete(&endpoint_path).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        b.api
            .post(&format!("{endpoint_path}/rotate-secret"), json!({}))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (_, b_links) = b.api.get("/links").await;
    assert_eq!(b_links["data"], json!([]));
    let (_, b_endpoints) = b.api.get("/webhooks").await;
    assert_eq!(b_endpoints["data"], json!([]));
    // A still has everything.
    assert_eq!(a.api.get(&link_path).await.0, StatusCode::OK);
    assert_eq!(a.api.get(&endpoint_path).await.0, StatusCode::OK);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_page_with_a_cursor_newest_first() {
    let (env, acme) = setup().await;
    let mut created = Vec::new();
    for n in 0..5 {
        let link = acme
            .api
            .add_link(json!({"destination_url": format!("https://example.com/{n}")}))
            .await;
        created.push(link["id"].as_str().unwrap().to_owned());
    }
    let (status, page) = acme.api.get("/links?limit=2").await;
    assert_eq!(status, StatusCode::OK);
    let mut seen: Vec<String> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap().to_owned())
        .collect();
    let mut cursor = page["next_cursor"].as_str().map(str::to_owned);
    while let Some(next) = cursor {
        let (_, page) = acme.api.get(&format!("/links?limit=2&cursor={next}")).await;
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["id"].as_str().unwrap().to_owned()),
        );
        cursor = page["next_cursor"].as_str().map(str::to_owned);
    }
    created.reverse();
    assert_eq!(seen, created);
    let (status, answer) = acme.api.get("/links?limit=0").await;
    assert_error(status, &answer, StatusCode::UNPROCESSABLE_ENTITY, "limit");
    let (status, answer) = acme.api.get("/links?limit=1000").await;
    assert_error(status, &answer, StatusCode::UNPROCESSABLE_ENTITY, "limit");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_can_be_fetched_updated_and_deleted() {
    let (env, acme) = setup().await;
    let link = acme.api.add_link(json!({"destination_url": "https://example.com/x", "campaign": "Q4", "tags": ["a", "a", "b"]})).await;
    assert_eq!(link["tags"], json!(["a", "b"]));
    assert_eq!(link["clicks"], 0);
    assert_eq!(link["slug"].as_str().unwrap().len(), 7);
    let path = format!("/links/{}", link["id"].as_str().unwrap());
    let (status, updated) = acme
        .api
        .patch(&path, json!({"campaign": null, "slug": "renamed"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(updated["campaign"], Value::Null);
    assert_eq!(updated["short_url"], "https://lkkt.in/renamed");
    let (_, fetched) = acme.api.get(&path).await;
    assert_eq!(fetched, updated);
    assert_eq!(acme.api.delete(&path).await.0, StatusCode::NO_CONTENT);
    assert_eq!(acme.api.get(&path).await.0, StatusCode::NOT_FOUND);
    env.stop().await;
}
