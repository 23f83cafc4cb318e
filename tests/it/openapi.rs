//! `docs/openapi.json` against the router: the document served at
//! `GET /v1/openapi.json` without a token is the one in the repo, and
//! every route the router has is in the document, and every path and
//! method of the document is a route. (Every JSON answer of the other
//! API tests is checked against it in `support::send`.)

use crate::support;

use std::collections::BTreeSet;
use support::*;

/// `(METHOD, /path/{param})` of every arm of the router's matches in
/// `src/api/mod.rs`: patterns like `(&Method::GET, ["v1", "calls", id])`.
fn router_routes() -> BTreeSet<(String, String)> {
    let source = include_str!("../../src/api/mod.rs");
    let mut routes = BTreeSet::new();
    let mut rest = source;
    while let Some(at) = rest.find("Method::") {
        rest = &rest[at + "Method::".len()..];
        let method: String = rest
            .chars()
            .take_while(|c| c.is_ascii_uppercase())
            .collect();
        let after = &rest[method.len()..];
        // `, [` then the segments up to `]`.
        let Some(open) = after.strip_prefix(", [") else {
            continue;
        };
        let Some(close) = open.find(']') else {
            continue;
        };
        // Each segment's choices: literals (`"hold" | "play"` is two), or
        // one parameter for a binding (`id`, `name`) or `_`.
        let segments: Vec<Vec<String>> = open[..close]
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.split('|')
                    .map(str::trim)
                    .map(
                        |alt| match alt.strip_prefix('"').and_then(|a| a.strip_suffix('"')) {
                            Some(literal) => literal.to_string(),
                            None => "{}".to_string(),
                        },
                    )
                    .collect()
            })
            .collect();
        let mut paths = vec![String::new()];
        for choices in &segments {
            paths = paths
                .iter()
                .flat_map(|p| choices.iter().map(move |c| format!("{p}/{c}")))
                .collect();
        }
        if !method.is_empty() && !segments.is_empty() {
            routes.extend(paths.into_iter().map(|p| (method.clone(), p)));
        }
    }
    routes
}

/// The document's `(METHOD, /path/{})` pairs, parameters unnamed.
fn documented() -> BTreeSet<(String, String)> {
    let doc = support::openapi::document();
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let unnamed: Vec<String> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| {
                if s.starts_with('{') {
                    "{}".into()
                } else {
                    s.to_string()
                }
            })
            .collect();
        for method in item.as_object().expect("path item").keys() {
            out.insert((
                method.to_ascii_uppercase(),
                format!("/{}", unnamed.join("/")),
            ));
        }
    }
    out
}

#[test]
fn the_router_and_the_document_name_the_same_routes() {
    let router = router_routes();
    // The scan itself: it must find the routes every release had.
    for known in [
        ("POST", "/v1/dialin/pinlessCallUpdate"),
        ("GET", "/v1/calls/{}"),
        ("DELETE", "/v1/domain-dialin-config/{}"),
        ("GET", "/healthz"),
    ] {
        assert!(
            router.contains(&(known.0.to_string(), known.1.to_string())),
            "the scan of src/api/mod.rs missed {known:?}: {router:?}"
        );
    }
    let doc = documented();
    let missing: Vec<_> = router.difference(&doc).collect();
    assert!(
        missing.is_empty(),
        "routes docs/openapi.json lacks: {missing:?}"
    );
    let stale: Vec<_> = doc.difference(&router).collect();
    assert!(
        stale.is_empty(),
        "docs/openapi.json names routes the router lacks: {stale:?}"
    );
}

#[test]
fn the_document_is_openapi_3_1_and_every_reference_resolves() {
    let doc = support::openapi::document();
    assert_eq!(doc["openapi"], "3.1.0");
    let text = doc.to_string();
    let mut rest = text.as_str();
    let mut seen = 0;
    while let Some(at) = rest.find("\"$ref\":\"#/") {
        rest = &rest[at + "\"$ref\":\"#/".len()..];
        let end = rest.find('"').expect("a closed reference");
        let pointer = format!("/{}", &rest[..end]);
        assert!(
            doc.pointer(&pointer).is_some(),
            "{pointer} does not resolve"
        );
        seen += 1;
    }
    assert!(seen > 20, "only {seen} references found");
    // Every schema of the document compiles as JSON Schema 2020-12.
    for (name, schema) in doc["components"]["schemas"].as_object().expect("schemas") {
        let wrapped = serde_json::json!({ "components": doc["components"], "allOf": [schema] });
        assert!(jsonschema::validator_for(&wrapped).is_ok(), "schema {name}");
    }
}

#[tokio::test]
async fn the_document_is_served_without_a_token_as_it_is_in_the_repo() {
    let hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(&hooks.url(), "").await;
    let r = reqwest::get(gw.url("/v1/openapi.json")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let served: serde_json::Value = r.json().await.unwrap();
    assert_eq!(&served, support::openapi::document());
    // An answer the document does not describe fails `support::send`: a
    // path no template fits that does not answer 404 is caught.
    let caught = std::panic::catch_unwind(|| {
        support::openapi::check("GET", "/v1/nowhere/at/all", 200, &serde_json::Value::Null)
    });
    assert!(caught.is_err());
    // And a body of the wrong shape.
    let caught = std::panic::catch_unwind(|| {
        support::openapi::check(
            "GET",
            "/v1/queues",
            200,
            &serde_json::json!({ "queues": 3 }),
        )
    });
    assert!(caught.is_err());
}
