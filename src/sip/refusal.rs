//! A final error answer to an INVITE that may not go on, as data: the
//! admission decides it, `IncomingInvite::refuse` sends it. Every 503 the
//! gateway sends is built here, by [`Refusal::busy`].

/// What to answer an INVITE that is refused.
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
}
