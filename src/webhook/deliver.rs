//! Webhook delivery: POST a signed JSON body, retrying with exponential
//! backoff while it can still matter. Every attempt is reported to the
//! caller of `deliver` (the call driver puts it in the call's timeline).

use super::sign::{SigningKeys, sign};
use crate::clock::unix_ms;
use crate::confine::{Origin, UrlPolicy, UrlRefused, refusal_in};
use std::sync::Arc;
use std::time::Duration;

/// How hard to try.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Wait before the second attempt; doubled after each failure.
    pub first_backoff: Duration,
    /// Ceiling of the doubling.
    pub max_backoff: Duration,
    /// A receiver slower than this for one attempt counts as failed.
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            attempt_timeout: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// For the `{"Test":"test"}` verification of a saved entry: one
    /// attempt, answered within the API call.
    pub fn verification() -> Self {
        Self {
            max_attempts: 1,
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_millis(500),
            attempt_timeout: Duration::from_secs(5),
        }
    }

    /// For call events: they matter while the call is fresh, and later
    /// events queue behind earlier ones, so give up sooner (≈7.5 s).
    pub fn events() -> Self {
        Self {
            max_attempts: 5,
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(4),
            attempt_timeout: Duration::from_secs(5),
        }
    }
}

/// What one attempt gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The receiver answered with this HTTP status.
    Status(u16),
    /// No answer: connection refused, reset, or timed out.
    Error(AttemptError),
}

/// Why an attempt got no answer. The Display text is what the timeline
/// and the verification result show; the HTTP client's error is kept as
/// the source (shared, so that outcomes stay cheap to clone).
#[derive(Debug, Clone, thiserror::Error)]
pub enum AttemptError {
    /// The receiver did not answer within the attempt timeout.
    #[error("timed out")]
    TimedOut(#[source] Arc<reqwest::Error>),
    /// No connection could be made (refused, unreachable, TLS failed).
    #[error("connection failed")]
    Connect(#[source] Arc<reqwest::Error>),
    /// Anything else the HTTP client reported, in its own words.
    #[error("{0}")]
    Other(#[source] Arc<reqwest::Error>),
    /// The URL (an API client's) reaches an address it may not reach;
    /// nothing was sent.
    #[error(transparent)]
    Refused(UrlRefused),
}

impl AttemptError {
    fn of(e: reqwest::Error) -> Self {
        if let Some(refusal) = refusal_in(&e) {
            AttemptError::Refused(refusal.clone())
        } else if e.is_timeout() {
            AttemptError::TimedOut(Arc::new(e))
        } else if e.is_connect() {
            AttemptError::Connect(Arc::new(e))
        } else {
            AttemptError::Other(Arc::new(e))
        }
    }
}

/// Two errors are equal when they are of one kind and read the same: the
/// client's errors cannot be compared otherwise.
impl PartialEq for AttemptError {
    fn eq(&self, other: &Self) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
            && self.to_string() == other.to_string()
    }
}

impl Eq for AttemptError {}

impl AttemptOutcome {
    fn ok(&self) -> bool {
        matches!(self, AttemptOutcome::Status(200..=299))
    }

    /// Worth another try: network trouble, 408, 429 and 5xx. Any other 4xx
    /// (say 401 for a signature the app rejects) will not change by waiting.
    fn retryable(&self) -> bool {
        match self {
            // A name that did not resolve may resolve later; an address
            // refused stays refused.
            AttemptOutcome::Error(AttemptError::Refused(r)) => {
                matches!(r, UrlRefused::Unresolved { .. })
            }
            AttemptOutcome::Error(_) => true,
            AttemptOutcome::Status(s) => *s == 408 || *s == 429 || *s >= 500,
        }
    }
}

/// One attempt, as reported while delivery goes on.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub number: u32,
    pub outcome: AttemptOutcome,
    pub elapsed: Duration,
}

/// The final result of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// A 2xx came back. `answer` is its body when it had one of at most
    /// `MAX_ANSWER_BYTES` (the incoming-call webhook's answer may route
    /// the call); a longer or unreadable body is `None`.
    Delivered {
        attempts: u32,
        answer: Option<Vec<u8>>,
    },
    Failed {
        attempts: u32,
        last: AttemptOutcome,
    },
}

/// Longest 2xx answer body kept: a routing answer is a few hundred bytes;
/// an app that sends back a whole page does not route with it.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Posts signed webhooks. Cheap to clone; shares its connection pools.
///
/// Two clients: one for URLs the operator wrote (the config file's
/// entries), one for URLs an API client supplied (provisioned entries),
/// which reaches only addresses `urls` allows. `for_origin` picks.
#[derive(Clone)]
pub struct Sender {
    open: reqwest::Client,
    /// Err: it could not be built (no TLS backend); each attempt for an
    /// API client's URL then fails with that error (an unchecked client
    /// must never stand in).
    confined: Result<reqwest::Client, Arc<reqwest::Error>>,
    urls: UrlPolicy,
    origin: Origin,
    policy: RetryPolicy,
}

const USER_AGENT: &str = concat!("pinless/", env!("CARGO_PKG_VERSION"));

impl Sender {
    /// Sends for the operator's URLs until `for_origin` says otherwise.
    pub fn new(policy: RetryPolicy, urls: UrlPolicy) -> Self {
        let open = reqwest::Client::builder()
            .timeout(policy.attempt_timeout)
            .user_agent(USER_AGENT)
            .build()
            .unwrap_or_default();
        let confined = urls
            .http_client(policy.attempt_timeout)
            .user_agent(USER_AGENT)
            .build()
            .map_err(Arc::new);
        Self {
            open,
            confined,
            urls,
            origin: Origin::Operator,
            policy,
        }
    }

    /// The same connection pools with another retry policy.
    pub fn with_policy(&self, policy: RetryPolicy) -> Self {
        Self {
            policy,
            ..self.clone()
        }
    }

    /// The sender for URLs of `origin`.
    pub fn for_origin(&self, origin: Origin) -> Self {
        Self {
            origin,
            ..self.clone()
        }
    }

    /// Delivers `body` to `url`, signed with `key`. `id` is the
    /// `webhook-id`, the same across retries; each attempt is re-signed
    /// with the time it is sent. `report` sees every attempt as it ends.
    pub async fn deliver(
        &self,
        url: &str,
        keys: &SigningKeys,
        id: &str,
        body: &[u8],
        mut report: impl FnMut(&Attempt),
    ) -> Delivery {
        let mut backoff = self.policy.first_backoff;
        let mut number = 0;
        loop {
            number += 1;
            let started = std::time::Instant::now();
            let (outcome, answer) = self.attempt(url, keys, id, body).await;
            report(&Attempt {
                number,
                outcome: outcome.clone(),
                elapsed: started.elapsed(),
            });
            if outcome.ok() {
                return Delivery::Delivered {
                    attempts: number,
                    answer,
                };
            }
            if !outcome.retryable() || number >= self.policy.max_attempts {
                return Delivery::Failed {
                    attempts: number,
                    last: outcome,
                };
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.policy.max_backoff);
        }
    }

    /// One POST: its outcome, and the body of a 2xx answer (see `Delivery`).
    async fn attempt(
        &self,
        url: &str,
        keys: &SigningKeys,
        id: &str,
        body: &[u8],
    ) -> (AttemptOutcome, Option<Vec<u8>>) {
        let client = match self.origin {
            Origin::Operator => &self.open,
            Origin::ApiClient => {
                // Names are judged by the client's resolver; a literal
                // address never reaches it.
                if let Err(refusal) = self.urls.check_literal(url) {
                    return (AttemptOutcome::Error(AttemptError::Refused(refusal)), None);
                }
                match &self.confined {
                    Ok(client) => client,
                    Err(e) => return (AttemptOutcome::Error(AttemptError::Other(e.clone())), None),
                }
            }
        };
        let headers = sign(keys, id, unix_ms(), body);
        let mut request = client
            .post(url)
            .header("Content-Type", "application/json")
            .body(body.to_vec());
        for (name, value) in headers.pairs() {
            request = request.header(name, value);
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let answer = if response.status().is_success() {
                    read_capped(response, MAX_ANSWER_BYTES).await.ok()
                } else {
                    None
                };
                (AttemptOutcome::Status(status), answer)
            }
            Err(e) => (AttemptOutcome::Error(AttemptError::of(e)), None),
        }
    }
}

/// Why a body was not read (see `read_capped`).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The body is longer than allowed.
    #[error("larger than {0} bytes")]
    TooLarge(usize),
    /// The body could not be read in full (reset, timed out).
    #[error(transparent)]
    Failed(#[from] reqwest::Error),
}

/// The body of `response` if it holds at most `max` bytes and reads in
/// full (the client's timeout bounds the wait). Read in chunks, so that a
/// huge body is never held whole.
pub async fn read_capped(
    mut response: reqwest::Response,
    max: usize,
) -> Result<Vec<u8>, ReadError> {
    if response.content_length().is_some_and(|n| n > max as u64) {
        return Err(ReadError::TooLarge(max));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > max {
            return Err(ReadError::TooLarge(max));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
