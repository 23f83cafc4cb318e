//! `GET /v1/call-records?since=<Unix ms>&limit=<n>`: finished calls from
//! the database, oldest first. Page on with `since` = the last `endedAt`
//! (records that ended in that same millisecond come again; skip by id).

use super::Api;
use super::reply::{error, json};
use crate::store::RecordQuery;
use warp::http::StatusCode;
use warp::hyper::{Body, Response};

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

/// Parses the query string; the error names the parameter.
fn parse(query: &str) -> Result<RecordQuery, String> {
    let mut q = RecordQuery {
        since: 0,
        limit: DEFAULT_LIMIT,
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match name {
            "since" => {
                q.since = value
                    .parse()
                    .map_err(|_| "since: must be Unix time in milliseconds".to_string())?
            }
            "limit" => {
                q.limit = value
                    .parse()
                    .ok()
                    .filter(|l| (1..=MAX_LIMIT).contains(l))
                    .ok_or(format!("limit: must be 1 to {MAX_LIMIT}"))?
            }
            other => return Err(format!("{other}: unknown parameter")),
        }
    }
    Ok(q)
}

pub async fn list(api: &Api, query: &str) -> Response<Body> {
    let q = match parse(query) {
        Ok(q) => q,
        Err(msg) => return error(StatusCode::BAD_REQUEST, &msg),
    };
    let store = api.provisioning.store.clone();
    match tokio::task::spawn_blocking(move || store.records(q)).await {
        Ok(Ok(records)) => json(
            StatusCode::OK,
            &serde_json::json!({ "records": records, "count": records.len() }),
        ),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "call records unreadable");
            error(StatusCode::INTERNAL_SERVER_ERROR, "call records unreadable")
        }
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "call records unreadable"),
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn query_parameters_are_checked() {
        let q = parse("since=1700000000000&limit=5").unwrap();
        assert_eq!((q.since, q.limit), (1_700_000_000_000, 5));
        assert_eq!(parse("").unwrap().limit, 100);
        assert!(parse("since=yesterday").unwrap_err().starts_with("since"));
        assert!(parse("limit=0").unwrap_err().starts_with("limit"));
        assert!(parse("order=desc").unwrap_err().starts_with("order"));
    }
}
