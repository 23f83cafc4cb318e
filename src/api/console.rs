//! `GET /console` and `GET /console/<asset>`: the operator web page. Its
//! files live under `assets/console/` and are compiled into the binary, so
//! a fresh machine needs no CDN, no build tool and no file beside the
//! binary. The page and its files need no token: they hold no data. Every
//! call the page makes to the API carries the operator's token, which the
//! page keeps in the tab's session storage.

use warp::http::StatusCode;
use warp::hyper::{Body, Response};

/// One file of the console: its name under `/console/`, type and bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

/// The page itself, at `/console`.
const PAGE: Asset = Asset {
    name: "",
    content_type: "text/html; charset=utf-8",
    body: include_str!("../../assets/console/index.html"),
};

/// The files the page loads, at `/console/<name>`.
const ASSETS: &[Asset] = &[
    Asset {
        name: "console.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../../assets/console/console.css"),
    },
    Asset {
        name: "console.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../assets/console/console.js"),
    },
];

/// Only our own files run and load: no inline script or style (so text
/// from a caller's headers can never become code), no framing (no
/// clickjacking of the hang-up button), API calls to this origin only.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// `GET /console`.
pub fn page() -> Response<Body> {
    reply(&PAGE)
}

/// `GET /console/<name>`, or `None` for a file the console does not have.
pub fn asset(name: &str) -> Option<Response<Body>> {
    ASSETS.iter().find(|a| a.name == name).map(reply)
}

fn reply(a: &Asset) -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", a.content_type)
        .header("content-security-policy", CSP)
        .header("x-content-type-options", "nosniff")
        .header("x-frame-options", "DENY")
        .header("referrer-policy", "no-referrer")
        // The files change with the binary; a browser asks again each time
        // (cheap: they are small and served from memory).
        .header("cache-control", "no-cache")
        .body(Body::from(a.body))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_the_page_names_is_served() {
        for a in ASSETS {
            assert!(
                PAGE.body.contains(&format!("/console/{}", a.name)),
                "{} is served but the page never loads it",
                a.name
            );
        }
        assert!(asset("nope.js").is_none());
        assert!(asset("../Cargo.toml").is_none());
    }

    #[test]
    fn the_page_has_no_inline_script_or_style() {
        // The CSP would block them: the page would break silently.
        assert!(!PAGE.body.contains("<script>"));
        assert!(!PAGE.body.contains("<style"));
        assert!(!PAGE.body.contains(" style=\""));
        assert!(!PAGE.body.contains(" onclick="));
    }
}
