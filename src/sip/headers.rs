//! Custom headers that travel with a call: every `X-…` header and
//! `User-to-User`. Collected from the caller's INVITE, checked when an app
//! adds its own, and joined into the webhook's `sipHeaders`.

/// True for headers that pinless carries: `X-…` and `User-to-User`.
pub fn is_custom(name: &str) -> bool {
    // Bytes, not a str slice: a name may start with a multi-byte character
    // (found by the fuzz target: slicing it at 2 panicked).
    let b = name.as_bytes();
    b.len() > 2 && b[..2].eq_ignore_ascii_case(b"x-") || name.eq_ignore_ascii_case("user-to-user")
}

/// The custom headers among `all`, in order.
pub fn custom_headers(all: &[(String, String)]) -> Vec<(String, String)> {
    all.iter().filter(|(n, _)| is_custom(n)).cloned().collect()
}

/// `sipHeaders` for the webhook: a header given twice is joined with ", ";
/// the first spelling of a name is kept.
pub fn to_json_map(headers: &[(String, String)]) -> serde_json::Map<String, serde_json::Value> {
    let mut out = serde_json::Map::new();
    for (name, value) in headers {
        let existing = out
            .iter_mut()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v);
        match existing {
            Some(serde_json::Value::String(v)) => {
                v.push_str(", ");
                v.push_str(value);
            }
            _ => {
                out.insert(name.clone(), serde_json::Value::String(value.clone()));
            }
        }
    }
    out
}

/// Why an app-supplied header cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("only X- headers and User-to-User may be set")]
    NotCustom,
    #[error("the name must be a SIP token")]
    BadName,
    #[error("the value must be one line of printable text, at most 1024 bytes")]
    BadValue,
}

/// Checks a header an app asks us to add to an INVITE.
pub fn check(name: &str, value: &str) -> Result<(), HeaderError> {
    if !is_custom(name) {
        return Err(HeaderError::NotCustom);
    }
    let token = |c: char| c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c);
    if !name.chars().all(token) {
        return Err(HeaderError::BadName);
    }
    if value.len() > 1024 || value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(HeaderError::BadValue);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(n: &str, v: &str) -> (String, String) {
        (n.into(), v.into())
    }

    #[test]
    fn only_custom_headers_are_kept_and_repeats_join() {
        let all = vec![
            h("Via", "x"),
            h("X-Lang", "de"),
            h("User-to-User", "abc;encoding=hex"),
            h("x-lang", "fr"),
            h("Xylophone", "no"),
        ];
        let custom = custom_headers(&all);
        assert_eq!(custom.len(), 3);
        let json = to_json_map(&custom);
        assert_eq!(json["X-Lang"], "de, fr");
        assert_eq!(json["User-to-User"], "abc;encoding=hex");
        assert_eq!(json.len(), 2);
    }

    #[test]
    fn names_starting_with_multibyte_characters_are_not_custom() {
        assert!(!is_custom("\u{FFFD}"));
        assert!(!is_custom("éé-Lang"));
        assert!(check("\u{FFFD}", "\u{1c}").is_err());
    }

    #[test]
    fn app_headers_are_checked() {
        assert!(check("X-Customer", "42").is_ok());
        assert_eq!(check("Via", "x"), Err(HeaderError::NotCustom));
        assert_eq!(check("X-Bad Name", "x"), Err(HeaderError::BadName));
        assert_eq!(
            check("X-Inject", "a\r\nVia: evil"),
            Err(HeaderError::BadValue)
        );
    }
}
