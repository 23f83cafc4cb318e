//! A final error answer to an INVITE that may not go on, as data: the
//! admission decides it, `IncomingInvite::refuse` sends it. Every 503 the
//! gateway sends is built here, by [`Refusal::busy`].

/// `Retry-After` of `Refusal::draining`.
pub const DRAINING_RETRY_AFTER_SECS: u32 = 5;

/// What to answer an INVITE (or OPTIONS probe) that is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: u16,
    /// Reason phrase, when not the code's usual one.
    pub phrase: Option<&'static str>,
    pub headers: Vec<(&'static str, String)>,
    /// Why, for the log and metrics (never sent).
    pub why: &'static str,
}

impl Refusal {
    pub fn new(code: u16, why: &'static str) -> Self {
        Self {
            code,
            phrase: None,
            headers: Vec::new(),
            why,
        }
    }

    /// 503 Service Unavailable with `Retry-After`: the gateway cannot take
    /// the call now, but may in `retry_after_secs`.
    pub fn busy(retry_after_secs: u32, why: &'static str) -> Self {
        Self::new(503, why).with_header("Retry-After", retry_after_secs.to_string())
    }

    /// 503 while the node stops (issue 11): to new INVITEs and to a
    /// dispatcher's OPTIONS probes. A restart in resume mode is back in a
    /// second or two; a drain lasts longer, but a dispatcher keeps probing
    /// at its own pace, so a short wait only costs a retry.
    pub fn draining() -> Self {
        Self::busy(DRAINING_RETRY_AFTER_SECS, "draining")
    }

    pub fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn with_phrase(mut self, phrase: &'static str) -> Self {
        self.phrase = Some(phrase);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::Refusal;

    #[test]
    fn busy_says_when_to_come_back() {
        let r = Refusal::busy(5, "full");
        assert_eq!(r.code, 503);
        assert_eq!(r.headers, vec![("Retry-After", "5".to_string())]);
    }

    #[test]
    fn draining_is_a_busy_503() {
        let r = Refusal::draining();
        assert_eq!(r.code, 503);
        assert_eq!(r.headers[0].0, "Retry-After");
    }
}
