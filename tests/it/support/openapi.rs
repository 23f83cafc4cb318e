//! `docs/openapi.json` as the tests hold the API to it: every JSON answer
//! that goes through `support::send` is checked against the schema the
//! document gives for its path, method and status (a status the document
//! does not list fails too), so the document cannot drift from what the
//! API answers.

use serde_json::{Value, json};
use std::sync::OnceLock;

/// The document, parsed once.
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let text = include_str!("../../../docs/openapi.json");
        serde_json::from_str(text).expect("docs/openapi.json is JSON")
    })
}

/// The document's path template that `path` falls under: segments equal,
/// or `{…}` for one segment; a literal segment wins over a parameter.
pub fn template_of(path: &str) -> Option<String> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let paths = document()["paths"].as_object()?;
    let mut best: Option<(usize, &String)> = None;
    for template in paths.keys() {
        let parts: Vec<&str> = template.split('/').filter(|s| !s.is_empty()).collect();
        if parts.len() != segments.len() {
            continue;
        }
        let fits = parts
            .iter()
            .zip(&segments)
            .all(|(t, s)| t == s || (t.starts_with('{') && t.ends_with('}')));
        if !fits {
            continue;
        }
        let literal = parts.iter().filter(|t| !t.starts_with('{')).count();
        if best.is_none_or(|(n, _)| literal > n) {
            best = Some((literal, template));
        }
    }
    best.map(|(_, t)| t.clone())
}

/// Checks one answer of the API; panics, saying why, when the document
/// does not describe it.
pub fn check(method: &str, path: &str, status: u16, body: &Value) {
    let doc = document();
    let Some(template) = template_of(path) else {
        // A path the API does not have: 404 with the error shape.
        assert_eq!(
            status, 404,
            "{method} {path}: no path of docs/openapi.json fits"
        );
        let error =
            json!({ "components": doc["components"], "$ref": "#/components/schemas/Error" });
        let valid = jsonschema::validator_for(&error).is_ok_and(|v| v.is_valid(body));
        assert!(
            valid,
            "{method} {path}: 404 without the error shape: {body}"
        );
        return;
    };
    let operation = &doc["paths"][&template][method.to_ascii_lowercase()];
    if operation.is_null() {
        // The router answers 405 for a known path with another method.
        assert_eq!(
            status, 405,
            "{method} {template} is not in docs/openapi.json"
        );
        return;
    }
    let responses = &operation["responses"];
    let response = [
        status.to_string(),
        format!("{}XX", status / 100),
        "default".into(),
    ]
    .iter()
    .map(|k| &responses[k])
    .find(|r| !r.is_null())
    .unwrap_or_else(|| {
        panic!(
            "{method} {template} answered {status}, which docs/openapi.json does not list: {body}"
        )
    });
    let Some(schema) = response["content"]["application/json"].get("schema") else {
        return;
    };
    // The schema with the document's components beside it, so that its
    // `#/components/schemas/…` references resolve.
    let wrapped = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": doc["components"],
        "allOf": [schema],
    });
    let validator = jsonschema::validator_for(&wrapped)
        .unwrap_or_else(|e| panic!("docs/openapi.json, {method} {template} {status}: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {path} answered {status} with a body docs/openapi.json does not describe:\n{}\nbody: {body}",
        errors.join("\n")
    );
}
