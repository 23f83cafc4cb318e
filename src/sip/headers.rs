//! Custom headers that travel with a call: every `X-…` header and
//! `User-to-User`. Collected from the caller's INVITE and checked when an
//! app adds its own (the webhook's `sipHeaders` object is built in
//! `webhook::messages`).

// The name and value rules are shared with config validation (a
// `header_policy.rename` target must be one): one implementation, in config.
pub use crate::config::syntax::{
    HeaderError, check_custom_header as check, is_custom_header as is_custom,
};

/// The custom headers among `all`, in order.
pub fn custom_headers(all: &[(String, String)]) -> Vec<(String, String)> {
    all.iter().filter(|(n, _)| is_custom(n)).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(n: &str, v: &str) -> (String, String) {
        (n.into(), v.into())
    }

    #[test]
    fn only_custom_headers_are_kept_in_order() {
        let all = vec![
            h("Via", "x"),
            h("X-Lang", "de"),
            h("User-to-User", "abc;encoding=hex"),
            h("x-lang", "fr"),
            h("Xylophone", "no"),
        ];
        let custom = custom_headers(&all);
        let names: Vec<&str> = custom.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["X-Lang", "User-to-User", "x-lang"]);
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
