//! `--update-to`: once the probe's call is held by a pinless node, find it
//! through that node's API (by the probe's unique From) and move it to a
//! room with `pinlessCallUpdate`, as an app would; then watch it bridge.

use serde::Serialize;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Longest wait for the call to appear in the API, and then to bridge.
const FIND_WITHIN: Duration = Duration::from_secs(10);
const BRIDGE_WITHIN: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(200);

/// Where to move the call, through which API.
#[derive(Debug, Clone)]
pub struct UpdateTo {
    /// The room's SIP URI.
    pub room: String,
    /// The pinless API base, like `http://127.0.0.1:8080`.
    pub api: String,
    pub token: String,
}

/// How the update went.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateReport {
    pub room: String,
    pub call_id: Option<String>,
    /// The update's HTTP status.
    pub status: Option<u16>,
    pub bridged: bool,
    /// From the update to `bridged`.
    pub bridged_ms: Option<u64>,
    pub error: Option<String>,
}

impl UpdateReport {
    fn failed(room: &str, call_id: Option<String>, status: Option<u16>, error: String) -> Self {
        UpdateReport {
            room: room.to_string(),
            call_id,
            status,
            bridged: false,
            bridged_ms: None,
            error: Some(error),
        }
    }

    /// The probe's listening time ran out first.
    pub fn unfinished() -> Self {
        Self::failed("", None, None, "the probe stopped listening before the call bridged (raise --duration)".into())
    }

    pub fn summary(&self) -> String {
        match (&self.error, self.bridged_ms) {
            (None, Some(ms)) => format!("bridged to {} in {ms} ms", self.room),
            (Some(e), _) => format!("not bridged: {e}"),
            (None, None) => "not bridged".into(),
        }
    }
}

impl UpdateTo {
    /// Finds the call whose From is `from`, moves it, waits for `bridged`.
    pub async fn run(self, from: String) -> UpdateReport {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        let base = self.api.trim_end_matches('/').to_string();
        let get = |path: String| {
            http.get(format!("{base}{path}"))
                .bearer_auth(&self.token)
                .send()
        };
        let user = from
            .split_once(':')
            .map_or(from.as_str(), |(_, rest)| rest)
            .split('@')
            .next()
            .unwrap_or_default()
            .to_string();
        // The call is listed once it is held (just after the 200).
        let looking = Instant::now();
        let (id, domain) = loop {
            let found = match get("/v1/calls".into()).await {
                Ok(r) if r.status().is_success() => r.json::<Value>().await.ok().and_then(|v| {
                    v["calls"].as_array()?.iter().find_map(|c| {
                        let ours = c["from"].as_str()?.contains(&user);
                        let id = c["callId"].as_str()?.to_string();
                        let domain = c["callDomain"].as_str()?.to_string();
                        ours.then_some((id, domain))
                    })
                }),
                Ok(r) => {
                    let status = r.status().as_u16();
                    let error = format!("GET /v1/calls answered {status}");
                    return UpdateReport::failed(&self.room, None, Some(status), error);
                }
                Err(e) => {
                    let error = format!("the API at {base} is unreachable: {e}");
                    return UpdateReport::failed(&self.room, None, None, error);
                }
            };
            if let Some(found) = found {
                break found;
            }
            if looking.elapsed() > FIND_WITHIN {
                let error = format!("no call from {user} held at {base}");
                return UpdateReport::failed(&self.room, None, None, error);
            }
            tokio::time::sleep(POLL).await;
        };
        let asked = Instant::now();
        let body = json!({ "callId": id, "callDomain": domain, "sipUri": self.room });
        let sent = http
            .post(format!("{base}/v1/dialin/pinlessCallUpdate"))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await;
        let status = match sent {
            Ok(r) if r.status().is_success() => r.status().as_u16(),
            Ok(r) => {
                let status = r.status().as_u16();
                let text = r.text().await.unwrap_or_default();
                let error = format!("the update got {status}: {text}");
                return UpdateReport::failed(&self.room, Some(id), Some(status), error);
            }
            Err(e) => {
                let error = format!("the update was not answered: {e}");
                return UpdateReport::failed(&self.room, Some(id), None, error);
            }
        };
        while asked.elapsed() < BRIDGE_WITHIN {
            tokio::time::sleep(POLL).await;
            let state = match get(format!("/v1/calls/{id}")).await {
                Ok(r) => r.json::<Value>().await.ok(),
                Err(_) => None,
            };
            let state = state.as_ref().and_then(|v| v["state"].as_str());
            if state == Some("bridged") {
                return UpdateReport {
                    room: self.room,
                    call_id: Some(id),
                    status: Some(status),
                    bridged: true,
                    bridged_ms: Some(asked.elapsed().as_millis() as u64),
                    error: None,
                };
            }
            if state == Some("ended") {
                let error = "the call ended instead".to_string();
                return UpdateReport::failed(&self.room, Some(id), Some(status), error);
            }
        }
        let error = format!("not bridged within {BRIDGE_WITHIN:?}");
        UpdateReport::failed(&self.room, Some(id), Some(status), error)
    }
}
