//! `GET /console`: the operator page and its files are served from the
//! binary without a token, with the types and the strict headers a
//! browser needs to run them safely, and none of them holds a token.

use crate::support;

use support::*;

/// The page and every file it loads, with the content type each must have.
const FILES: &[(&str, &str)] = &[
    ("/console", "text/html"),
    ("/console/", "text/html"),
    ("/console/console.js", "text/javascript"),
    ("/console/console.css", "text/css"),
];

#[tokio::test]
async fn the_console_is_served_without_a_token_with_strict_headers() {
    let hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(&hooks.url(), "").await;
    let plain = reqwest::Client::new();
    for (path, kind) in FILES {
        let r = plain.get(gw.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path} answers without a token");
        let header = |name: &str| {
            r.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        assert!(
            header("content-type").starts_with(kind),
            "{path}: content-type {}",
            header("content-type")
        );
        let csp = header("content-security-policy");
        assert!(csp.contains("default-src 'self'"), "{path}: CSP {csp}");
        assert!(csp.contains("script-src 'self'"), "{path}: CSP {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: CSP {csp}");
        assert!(!csp.contains("unsafe-eval"), "{path}: CSP {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: CSP {csp}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("cache-control"), "no-cache", "{path}");
        let body = r.text().await.unwrap();
        assert!(!body.is_empty(), "{path} has a body");
        assert!(!body.contains(TOKEN), "{path} holds no token");
    }
}

#[tokio::test]
async fn the_page_loads_only_its_own_files_and_keeps_the_token_in_the_tab() {
    let hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(&hooks.url(), "").await;
    let page = reqwest::get(gw.url("/console")).await.unwrap();
    let html = page.text().await.unwrap();
    // Every script and stylesheet comes from /console/ on this node (no
    // CDN), and there is no inline script the CSP would block.
    for attr in ["src=\"", "href=\""] {
        for piece in html.split(attr).skip(1) {
            let url = piece.split('"').next().unwrap_or_default();
            assert!(
                url.starts_with("/console/") || url.starts_with('#') || url == "data:,",
                "the page loads {url}"
            );
        }
    }
    assert!(!html.contains("<script>"), "no inline script");
    let js = reqwest::get(gw.url("/console/console.js"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(js.contains("sessionStorage"), "the token lives in the tab");
    assert!(
        !js.contains("localStorage"),
        "never in storage that outlives the tab"
    );
    assert!(!js.contains("innerHTML"), "API data never becomes HTML");
}

#[tokio::test]
async fn an_unknown_console_file_is_a_json_404_and_the_api_still_wants_a_token() {
    let hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(&hooks.url(), "").await;
    let plain = reqwest::Client::new();
    for path in ["/console/nope.js", "/console/../Cargo.toml", "/console/a/b"] {
        let r = plain.get(gw.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
        let sent = r.url().path().to_string();
        let body: serde_json::Value = r.json().await.unwrap();
        assert!(body["error"].is_string(), "{path}: {body}");
        crate::support::openapi::check("GET", &sent, 404, &body);
    }
    // Serving the console opened no door to the API.
    let r = plain.get(gw.url("/v1/calls")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    crate::support::openapi::check("GET", "/v1/calls", 401, &body);
    // Only GET: the console takes no writes.
    let r = plain.post(gw.url("/console")).send().await.unwrap();
    assert_ne!(r.status(), 200);
}
