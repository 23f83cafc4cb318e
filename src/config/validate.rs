//! Checks run once at load time, so that a bad config stops the gateway
//! before it binds anything, with the key and the reason.

use super::dialin::{AnswerMode, DialinEntry, HoldTimeoutAction, MediaEncryption};
use super::error::ConfigError;
use super::sections::Config;
use super::syntax::{check_custom_header, decode_secret, dialable, parse_cidr, uri_user};

/// More shards than this is a typo, not a machine: each is an OS thread
/// that ticks every millisecond.
const MAX_MEDIA_THREADS: u16 = 1024;

impl Config {
    /// Semantic checks that serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        // Addresses were parsed at load (see `values`); what is left is how
        // they go together.
        if self.sip.udp.is_none() && self.sip.tcp.is_none() && self.sip.tls.is_none() {
            return Err(ConfigError::key("sip", "every SIP transport is disabled"));
        }
        if self.sip.tls.is_some() && (self.sip.tls_cert.is_none() || self.sip.tls_key.is_none()) {
            return Err(ConfigError::key(
                "sip.tls",
                "tls needs tls_cert and tls_key",
            ));
        }
        if self.sip.public_host.is_empty() {
            return Err(ConfigError::key("sip.public_host", "must not be empty"));
        }
        if self.media.rtp_port_min == 0 || self.media.rtp_port_min > self.media.rtp_port_max {
            return Err(ConfigError::key(
                "media.rtp_port_min",
                "must be non-zero and not above rtp_port_max",
            ));
        }
        if self.media.rtp_port_max - self.media.rtp_port_min < 3 {
            return Err(ConfigError::key(
                "media.rtp_port_max",
                "the range holds fewer than 4 ports",
            ));
        }
        if self.media.threads > MAX_MEDIA_THREADS {
            return Err(ConfigError::key(
                "media.threads",
                format!("at most {MAX_MEDIA_THREADS} (0 = one per core)"),
            ));
        }
        // The contract's keys for uploading and encrypting recordings are
        // read, but this version does neither: a config that asks for
        // them must not run as if it did.
        if !self.recording.upload.is_empty() {
            return Err(ConfigError::key(
                "recording.upload",
                "uploading recordings is not supported by this version; leave it \"\" (files stay in recording.dir)",
            ));
        }
        if !self.recording.encrypt_to.is_empty() {
            return Err(ConfigError::key(
                "recording.encrypt_to",
                "encrypting recordings is not supported by this version; leave it []",
            ));
        }
        if self.hold.max_hold.is_zero() {
            return Err(ConfigError::key("hold.max_hold_secs", "must be at least 1"));
        }
        if self.limits.pacer_busy_max_pct > 100 {
            return Err(ConfigError::key(
                "limits.pacer_busy_max_pct",
                "a percentage: 0 to 100",
            ));
        }
        if self.limits.max_calls == 0 {
            return Err(ConfigError::key("limits.max_calls", "must be at least 1"));
        }
        if self.limits.invites_per_sec_per_ip == 0 {
            return Err(ConfigError::key(
                "limits.invites_per_sec_per_ip",
                "must be at least 1",
            ));
        }
        let l = &self.limits;
        if l.max_headers < 8 || l.max_header_line_bytes < 256 || l.max_message_bytes < 2048 {
            return Err(ConfigError::key(
                "limits",
                "max_headers ≥ 8, max_header_line_bytes ≥ 256 and max_message_bytes ≥ 2048, \
                 or ordinary calls would be refused",
            ));
        }
        if let Some(dir) = &self.api.media_dir
            && !dir.is_dir()
        {
            return Err(ConfigError::key(
                "api.media_dir",
                format!("{} is not a directory", dir.display()),
            ));
        }
        self.validate_cluster()?;
        self.validate_dialin()?;
        self.validate_registrations()
    }

    /// A cluster needs a Redis URL the client reads and an API address the
    /// other nodes can forward to.
    fn validate_cluster(&self) -> Result<(), ConfigError> {
        let c = &self.cluster;
        if !c.enabled() {
            return Ok(());
        }
        if let Err(e) = redis::IntoConnectionInfo::into_connection_info(c.redis_url.as_str()) {
            return Err(ConfigError::key(
                "cluster.redis_url",
                format!(
                    "{:?} is not a Redis URL like redis://127.0.0.1:6379/0: {e}",
                    without_userinfo(&c.redis_url)
                ),
            ));
        }
        let api = c.advertise_api.trim_end_matches('/');
        let host = api
            .strip_prefix("http://")
            .or_else(|| api.strip_prefix("https://"))
            .unwrap_or("");
        if host.is_empty() || host.contains(['/', '?', '#', ' ']) {
            return Err(ConfigError::key(
                "cluster.advertise_api",
                "a cluster node needs the http(s) base URL other nodes reach its API at, \
                 like http://10.0.0.5:8080",
            ));
        }
        Ok(())
    }

    /// Each registration on its own, names unique, and a fallback entry
    /// of this file.
    fn validate_registrations(&self) -> Result<(), ConfigError> {
        let entries: Vec<&str> = self.dialin.iter().map(|e| e.name_prefix.as_str()).collect();
        let mut names = std::collections::HashSet::new();
        for (i, r) in self.registration.iter().enumerate() {
            let key = format!("registration[{i}]");
            r.validate(&key, &entries)?;
            if !names.insert(r.name.as_str()) {
                return Err(ConfigError::key(
                    format!("{key}.name"),
                    "used by another registration",
                ));
            }
        }
        Ok(())
    }

    fn validate_dialin(&self) -> Result<(), ConfigError> {
        let mut seen_numbers = std::collections::HashSet::new();
        let mut seen_users = std::collections::HashSet::new();
        let mut seen_names = std::collections::HashSet::new();
        for (i, entry) in self.dialin.iter().enumerate() {
            let key = |field: &str| format!("dialin[{i}].{field}");
            validate_entry(entry, &key)?;
            // SDES keys are taken over TLS only: without a listener every
            // SRTP offer would get 488, with nothing said at start-up.
            if entry.media_encryption != MediaEncryption::Disable && self.sip.tls.is_none() {
                return Err(ConfigError::key(
                    key("media_encryption"),
                    "\"allow\" and \"require\" need a TLS listener (sip.tls): SRTP keys are only taken over TLS",
                ));
            }
            if !seen_names.insert(entry.name_prefix.clone()) {
                return Err(ConfigError::key(
                    key("name_prefix"),
                    "used by another entry",
                ));
            }
            let number = entry.phone_number.clone();
            if number.is_some_and(|n| !seen_numbers.insert(n)) {
                return Err(ConfigError::key(
                    key("phone_number"),
                    "used by another entry",
                ));
            }
            let user = entry.sip_uri.as_deref().and_then(uri_user);
            if user.is_some_and(|u| !seen_users.insert(u.to_string())) {
                return Err(ConfigError::key(
                    key("sip_uri"),
                    "user part used by another entry",
                ));
            }
        }
        Ok(())
    }
}

/// Checks one dial-in entry on its own (the config file's, or one sent to
/// the provisioning API); `key` turns a field name into the key the error
/// names (`dialin[0].phone_number`, `config.phone_number`).
pub fn validate_entry(
    entry: &DialinEntry,
    key: &dyn Fn(&str) -> String,
) -> Result<(), ConfigError> {
    if entry.name_prefix.is_empty()
        || !entry
            .name_prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ConfigError::key(
            key("name_prefix"),
            "must be non-empty letters, digits, '-' or '_'",
        ));
    }
    if entry.phone_number.is_none() && entry.sip_uri.is_none() {
        return Err(ConfigError::key(
            key("phone_number"),
            "an entry needs a phone_number or a sip_uri to match calls",
        ));
    }
    if let Some(number) = &entry.phone_number {
        let digits = number.strip_prefix('+').unwrap_or("");
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) || digits.len() > 15 {
            return Err(ConfigError::key(
                key("phone_number"),
                "must be E.164, like +15551230000",
            ));
        }
    }
    if let Some(uri) = &entry.sip_uri {
        uri_user(uri).ok_or_else(|| {
            ConfigError::key(key("sip_uri"), "must be a sip: URI with a user part")
        })?;
    }
    if !is_http_url(&entry.room_creation_api) {
        return Err(ConfigError::key(
            key("room_creation_api"),
            "must be an http:// or https:// URL",
        ));
    }
    if let Some(secret) = &entry.hmac {
        decode_secret(secret).map_err(|reason| ConfigError::key(key("hmac"), reason))?;
    }
    validate_call_policy(entry, key)?;
    if entry.allowed_cidrs.is_empty() && entry.credentials.is_empty() && !entry.open {
        return Err(ConfigError::key(
            key("open"),
            format!(
                "entry \"{}\" has neither allowed_cidrs nor credentials: anyone could call it; \
                 set open = true to mean that, or restrict it",
                entry.name_prefix
            ),
        ));
    }
    for (j, c) in entry.credentials.iter().enumerate() {
        if c.username.is_empty() || c.password.is_empty() || c.username.contains('"') {
            return Err(ConfigError::key(
                key(&format!("credentials[{j}]")),
                "username and password must be non-empty (no '\"' in the username)",
            ));
        }
    }
    for (j, cidr) in entry.allowed_cidrs.iter().enumerate() {
        parse_cidr(cidr).ok_or_else(|| {
            ConfigError::key(
                key(&format!("allowed_cidrs[{j}]")),
                "not a CIDR range like 203.0.113.0/24",
            )
        })?;
    }
    Ok(())
}

fn is_http_url(url: &str) -> bool {
    url.starts_with("http://") || url.starts_with("https://")
}

/// Transfer, hold-timeout, events and header-policy keys of one entry.
fn validate_call_policy(
    entry: &DialinEntry,
    key: &dyn Fn(&str) -> String,
) -> Result<(), ConfigError> {
    if entry.transfer_timeout.is_zero() {
        return Err(ConfigError::key(
            key("transfer_timeout_secs"),
            "must be at least 1",
        ));
    }
    if entry.max_hold.is_some_and(|d| d.is_zero()) {
        return Err(ConfigError::key(key("max_hold_secs"), "must be at least 1"));
    }
    match (&entry.hold_timeout_action, &entry.timeout_sip_uri) {
        (HoldTimeoutAction::Transfer, None) => {
            return Err(ConfigError::key(
                key("timeout_sip_uri"),
                "hold_timeout_action = \"transfer\" needs a timeout_sip_uri",
            ));
        }
        (_, Some(uri)) if !dialable(uri) => {
            return Err(ConfigError::key(
                key("timeout_sip_uri"),
                "must be a sip: or sips: URI with a user part",
            ));
        }
        _ => {}
    }
    if entry
        .events_url
        .as_deref()
        .is_some_and(|url| !is_http_url(url))
    {
        return Err(ConfigError::key(
            key("events_url"),
            "must be an http:// or https:// URL",
        ));
    }
    validate_hold_experience(entry, key)?;
    let policy = &entry.header_policy;
    for (j, name) in policy.allow.iter().enumerate() {
        let bare = name.strip_suffix('*').unwrap_or(name);
        if bare.is_empty() || bare.contains('*') {
            return Err(ConfigError::key(
                key(&format!("header_policy.allow[{j}]")),
                "a header name, optionally ending in * (like X-Customer-*)",
            ));
        }
    }
    for (from, to) in &policy.rename {
        check_custom_header(to, "").map_err(|e| {
            ConfigError::key(key(&format!("header_policy.rename.{from}")), e.to_string())
        })?;
    }
    if policy.max_value_bytes == 0 || policy.max_value_bytes > 8192 {
        return Err(ConfigError::key(
            key("header_policy.max_value_bytes"),
            "must be between 1 and 8192",
        ));
    }
    Ok(())
}

/// Early media, announcements, DTMF and media encryption keys of one entry.
fn validate_hold_experience(
    entry: &DialinEntry,
    key: &dyn Fn(&str) -> String,
) -> Result<(), ConfigError> {
    if entry.answer == AnswerMode::Early && entry.early_media_max.is_zero() {
        return Err(ConfigError::key(
            key("early_media_max_secs"),
            "must be at least 1 with answer = \"early\"",
        ));
    }
    for (digit, uri) in &entry.dtmf_transfer {
        let field = key(&format!("dtmf_transfer.{digit}"));
        if !is_dtmf_digit(digit) {
            return Err(ConfigError::key(
                field,
                "the key must be one DTMF digit: 0-9, *, #, A-D",
            ));
        }
        if !dialable(uri) {
            return Err(ConfigError::key(
                field,
                "must be a sip: or sips: URI with a user part",
            ));
        }
    }
    Ok(())
}

/// One DTMF key as RFC 4733 names them: `0`-`9`, `*`, `#`, `A`-`D`.
fn is_dtmf_digit(s: &str) -> bool {
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => crate::codec::dtmf_event(c).is_some(),
        _ => false,
    }
}

/// `url` with any `user:password@` of its authority shown as `***@`: a
/// config error is printed and logged, and must not carry the password.
fn without_userinfo(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), url),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}***@{host}{tail}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod redact_tests {
    use super::without_userinfo;

    #[test]
    fn passwords_in_urls_are_never_shown() {
        assert_eq!(
            without_userinfo("redis://u:p@h:6379/0"),
            "redis://***@h:6379/0"
        );
        assert_eq!(without_userinfo("redis://:secret@h/0"), "redis://***@h/0");
        assert_eq!(without_userinfo("u:p@h/0"), "***@h/0");
        assert_eq!(
            without_userinfo("redis://h:6379/0?x=a@b"),
            "redis://h:6379/0?x=a@b"
        );
        assert_eq!(without_userinfo("redis://h/0"), "redis://h/0");
    }
}
