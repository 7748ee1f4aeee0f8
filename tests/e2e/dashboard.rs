//! The dashboard's sign-in: an API key exchanged for a session cookie that is `HttpOnly` and
//! `SameSite=Strict`, accepted only with the `X-Linkkit-Dashboard` header (CSRF), stored as a
//! hash, ended by signing out, by revoking the key or by expiry, and spending its key's rate
//! limit. Also: the dashboard's files are served, with a strict Content-Security-Policy.

use linkkit_core::session_token::hash_session_token;
use linkkit_tests::{TestEnv, TestWorkspace};
use reqwest::header::{COOKIE, SET_COOKIE};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{json, Value};

const DASHBOARD_HEADER: &str = "x-linkkit-dashboard";

/// A browser's view of the API: no cookie jar, so each test sees exactly what is sent.
struct Browser {
    http: reqwest::Client,
    api: String,
}

impl Browser {
    fn new(env: &TestEnv) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            api: format!("{}/api/v1", env.api_url),
        }
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.api))
    }

    /// Signs in with `key` as the dashboard does; returns the response.
    async fn sign_in(&self, key: &str) -> reqwest::Response {
        self.request(Method::POST, "/session")
            .header(DASHBOARD_HEADER, "1")
            .json(&json!({ "api_key": key }))
            .send()
            .await
            .unwrap()
    }

    /// Signs in and returns the session token of the `Set-Cookie` header.
    async fn session_token(&self, key: &str) -> String {
        let response = self.sign_in(key).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let cookie = set_cookie(&response).expect("sign-in sets a cookie");
        cookie
            .strip_prefix("linkkit_session=")
            .and_then(|rest| rest.split(';').next())
            .expect("the cookie is linkkit_session")
            .to_owned()
    }

    /// A request as the dashboard makes it: the cookie, and the CSRF header when `csrf`.
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        csrf: bool,
    ) -> (StatusCode, Value) {
        let mut request = self
            .request(method, path)
            .header(COOKIE, format!("theme=dark; linkkit_session={token}"));
        if csrf {
            request = request.header(DASHBOARD_HEADER, "1");
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let bytes = response.bytes().await.unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, body)
    }
}

fn set_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get(SET_COOKIE)
        .map(|value| value.to_str().unwrap().to_owned())
}

async fn setup() -> (TestEnv, TestWorkspace, Browser) {
    let env = TestEnv::start().await;
    let acme = env.create_workspace("Acme").await;
    let browser = Browser::new(&env);
    (env, acme, browser)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_sets_a_strict_http_only_cookie_that_works_with_the_dashboard_header() {
    let (env, acme, browser) = setup().await;
    let response = browser.sign_in(&acme.key).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let cookie = set_cookie(&response).unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP on loopback cannot hold a Secure cookie: {cookie}"
    );
    let session: Value = response.json().await.unwrap();
    assert_eq!(session["workspace_id"], acme.id.as_str());
    assert_eq!(session["workspace_name"], "Acme");
    assert_eq!(session["key_prefix"], &acme.key[..7]);
    assert!(session["expires_at"].as_str().unwrap().ends_with('Z'));
    assert!(
        !session.to_string().contains(&acme.key),
        "no key in the answer"
    );

    let token = browser.session_token(&acme.key).await;
    let (status, created) = browser.call(Method::GET, "/session", &token, true).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["workspace_name"], "Acme");

    // The cookie acts as the key: what it creates, the key sees.
    let response = browser
        .request(Method::POST, "/links")
        .header(COOKIE, format!("linkkit_session={token}"))
        .header(DASHBOARD_HEADER, "1")
        .json(&json!({"destination_url": "https://example.com/from-the-dashboard"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let (_, links) = acme.api.get("/links").await;
    assert_eq!(
        links["data"][0]["destination_url"],
        "https://example.com/from-the-dashboard"
    );

    // Only the token's hash is stored.
    let stored: Vec<(String,)> = sqlx::query_as("SELECT token_hash FROM dashboard_sessions")
        .fetch_all(&env.pool)
        .await
        .unwrap();
    assert_eq!(stored.len(), 2);
    assert!(stored.iter().all(|(hash,)| hash != &token));
    assert!(stored
        .iter()
        .any(|(hash,)| hash == &hash_session_token(&token)));

    // Behind a TLS-terminating proxy the cookie is Secure.
    let behind_tls = browser
        .request(Method::POST, "/session")
        .header(DASHBOARD_HEADER, "1")
        .header("x-forwarded-proto", "https")
        .json(&json!({ "api_key": acme.key }))
        .send()
        .await
        .unwrap();
    assert!(set_cookie(&behind_tls).unwrap().contains("; Secure"));
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_cookie_without_the_dashboard_header_is_refused() {
    let (env, acme, browser) = setup().await;
    let token = browser.session_token(&acme.key).await;
    let (status, body) = browser.call(Method::GET, "/links", &token, false).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("X-Linkkit-Dashboard"));

    // A forged cross-site form post changes nothing.
    let forged = browser
        .request(Method::POST, "/links")
        .header(COOKIE, format!("linkkit_session={token}"))
        .header("content-type", "text/plain")
        .body(r#"{"destination_url": "https://attacker.example"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let (_, links) = acme.api.get("/links").await;
    assert_eq!(links["data"], json!([]));

    for (method, path) in [(Method::GET, "/session"), (Method::DELETE, "/session")] {
        let (status, body) = browser.call(method, path, &token, false).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
    }
    let (status, _) = browser.call(Method::GET, "/links", &token, true).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "signing out without the header did nothing"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_is_refused_and_sets_no_cookie() {
    let (env, acme, browser) = setup().await;
    let wrong = browser
        .sign_in("lk_0000000000000000000000000000000000000000")
        .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(set_cookie(&wrong).is_none());
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");

    let empty = browser.sign_in("  ").await;
    assert_eq!(empty.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(set_cookie(&empty).is_none());

    let without_header = browser
        .request(Method::POST, "/session")
        .json(&json!({ "api_key": acme.key }))
        .send()
        .await
        .unwrap();
    assert_eq!(without_header.status(), StatusCode::FORBIDDEN);
    assert!(set_cookie(&without_header).is_none());

    // An empty cookie, junk, and a well-formed token no sign-in ever gave.
    for junk in ["", "not-a-token", &"0".repeat(64)] {
        let (status, body) = browser.call(Method::GET, "/links", junk, true).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{junk}: {body}");
    }
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_revoking_the_key_or_expiry_ends_the_session() {
    let (env, acme, browser) = setup().await;

    // Sign out.
    let token = browser.session_token(&acme.key).await;
    let response = browser
        .request(Method::DELETE, "/session")
        .header(COOKIE, format!("linkkit_session={token}"))
        .header(DASHBOARD_HEADER, "1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let cleared = set_cookie(&response).unwrap();
    assert!(cleared.starts_with("linkkit_session=;") && cleared.contains("Max-Age=0"));
    let (status, body) = browser.call(Method::GET, "/links", &token, true).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("sign in again"));

    // Revoke the key the session was opened with; another key's session lives on.
    let (second_id, second_key) =
        linkkit_store::workspaces::create_key(&env.pool, &acme.id.parse().unwrap(), "laptop")
            .await
            .unwrap()
            .unwrap();
    let doomed = browser.session_token(second_key.expose()).await;
    let survivor = browser.session_token(&acme.key).await;
    assert_eq!(
        browser.call(Method::GET, "/links", &doomed, true).await.0,
        StatusCode::OK
    );
    assert!(linkkit_store::workspaces::revoke_key(&env.pool, &second_id)
        .await
        .unwrap());
    let (status, _) = browser.call(Method::GET, "/links", &doomed, true).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = browser.call(Method::GET, "/session", &doomed, true).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        browser.call(Method::GET, "/links", &survivor, true).await.0,
        StatusCode::OK
    );
    let refused = browser.sign_in(second_key.expose()).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);

    // Expiry.
    sqlx::query("UPDATE dashboard_sessions SET expires_at = now() - interval '1 second' WHERE token_hash = $1")
        .bind(hash_session_token(&survivor))
        .execute(&env.pool)
        .await
        .unwrap();
    let (status, _) = browser.call(Method::GET, "/links", &survivor, true).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_spends_the_rate_limit_of_its_key() {
    let env = TestEnv::start_with(&[("LINKKIT_API_RATE_LIMIT", "5")]).await;
    let busy = env.create_workspace("Busy").await;
    let browser = Browser::new(&env);
    let token = browser.session_token(&busy.key).await;
    let requests = (0..20).map(|_| browser.call(Method::GET, "/links", &token, true));
    let answers = futures_util::future::join_all(requests).await;
    let limited = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(limited > 0, "20 requests at once exceed 5 per second");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_is_served_with_its_files_and_a_strict_content_security_policy() {
    let (env, _acme, browser) = setup().await;
    let get = |path: &str| browser.http.get(format!("{}{path}", env.api_url)).send();

    let root = get("/").await.unwrap();
    assert!(root.status().is_redirection());
    assert_eq!(root.headers()["location"], "/dashboard/");

    for page in [
        "/dashboard/",
        "/dashboard/links",
        "/dashboard/settings/webhooks/new",
    ] {
        let response = get(page).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{page}");
        let headers = response.headers().clone();
        assert!(headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let policy = headers["content-security-policy"].to_str().unwrap();
        assert!(policy.contains("script-src 'self'") && policy.contains("frame-ancestors 'none'"));
        assert!(response
            .text()
            .await
            .unwrap()
            .contains("/dashboard/assets/app.js"));
    }
    for (file, kind) in [
        ("app.js", "text/javascript"),
        ("deliveries.js", "text/javascript"),
        ("app.css", "text/css"),
        ("favicon.svg", "image/svg+xml"),
    ] {
        let response = get(&format!("/dashboard/assets/{file}")).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{file}");
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with(kind));
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    }
    assert_eq!(
        get("/dashboard/assets/nothing.js").await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get("/api/v1/nothing").await.unwrap().status(),
        StatusCode::NOT_FOUND,
        "unknown API routes are still JSON 404s"
    );
    env.stop().await;
}
