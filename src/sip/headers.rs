//! Custom headers that travel with a call: every `X-…` header and
//! `User-to-User`. Collected from the caller's INVITE, checked when an app
//! adds its own, and joined into the webhook's `sipHeaders`.

// The name and value rules are shared with config validation (a
// `header_policy.rename` target must be one): one implementation, in config.
pub use crate::config::syntax::{
    HeaderError, check_custom_header as check, is_custom_header as is_custom,
};

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
