//! Everything pinless parses from a SIP peer, fed one fuzzer input: the SDP
//! body, the digest credentials header, custom-header checks, the URI user
//! and the message limits. None of it may panic, and no forged digest
//! header may pass.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pinless::sip::digest::{DigestAuth, Verdict};
use pinless::sip::{headers, sdp, uri_user};

fuzz_target!(|data: &[u8]| {
    let _ = sdp::parse(data);
    let text = String::from_utf8_lossy(data);
    let auth = DigestAuth::new("pinless");
    let verdict = auth.check("INVITE", Some(&text), Some("support"), |_| Some("pw".into()), 1_000);
    assert!(!matches!(verdict, Verdict::Ok { .. }), "forged credentials accepted");
    if let Some((name, value)) = text.split_once(':') {
        let _ = headers::check(name, value);
    }
    let _ = uri_user(&text);
});
