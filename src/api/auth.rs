//! Bearer tokens, compared in constant time so that response timing does
//! not reveal how much of a guessed token was right.

/// True if `header` is `Bearer <t>` for one of `tokens`. With no tokens
/// configured, nothing is authorized.
pub fn authorized(tokens: &[String], header: Option<&str>) -> bool {
    let Some(given) = header.and_then(|h| {
        let (scheme, rest) = h.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
    }) else {
        return false;
    };
    // Check every token, whatever matched, to keep the time constant.
    tokens.iter().fold(false, |ok, t| {
        ok | crate::ct::eq(t.as_bytes(), given.as_bytes())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens() {
        let tokens = vec!["dev-token".to_string(), "other".to_string()];
        assert!(authorized(&tokens, Some("Bearer dev-token")));
        assert!(authorized(&tokens, Some("bearer other")));
        assert!(!authorized(&tokens, Some("Bearer dev-tokex")));
        assert!(!authorized(&tokens, Some("dev-token")));
        assert!(!authorized(&tokens, None));
        assert!(!authorized(&[], Some("Bearer dev-token")));
    }
}
