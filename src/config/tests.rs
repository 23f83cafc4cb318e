use super::*;
use std::time::Duration;

fn load(text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::from_toml_with_env(
        text,
        vars.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        false,
    )
}

const ENTRY: &str = r#"
[[dialin]]
name_prefix = "support"
sip_uri = "sip:support@127.0.0.1"
room_creation_api = "http://127.0.0.1:9000/dialin"
open = true
"#;

#[test]
fn every_contract_key_parses() {
    let text = r#"
[node]
call_domain = "node-a"
state_dir = "./state"
[sip]
udp = "127.0.0.1:5060"
tcp = "127.0.0.1:5060"
tls = ""
tls_cert = ""
tls_key = ""
public_host = "127.0.0.1"
[media]
public_ip = "127.0.0.1"
rtp_port_min = 20000
rtp_port_max = 29999
[api]
listen = "127.0.0.1:8080"
bearer_tokens = ["dev-token"]
[hold]
music = "assets/hold.flac"
max_hold_secs = 600
[[dialin]]
name_prefix = "support"
phone_number = "+15551230000"
sip_uri = "sip:support@127.0.0.1"
room_creation_api = "http://127.0.0.1:9000/dialin"
hmac = "c2VjcmV0LWtleS1mb3ItdGVzdHM="
allowed_cidrs = ["203.0.113.0/24"]
credentials = [{ username = "joe", password = "pw" }]
open = false
[limits]
max_calls = 5000
invites_per_sec_per_ip = 50
"#;
    let c = load(text, &[]).unwrap();
    assert_eq!(c.node.call_domain.as_deref(), Some("node-a"));
    assert_eq!(c.dialin.len(), 1);
    assert_eq!(c.dialin[0].credentials[0].username, "joe");
    assert_eq!(c.limits.invites_per_sec_per_ip, 50);
}

#[test]
fn unknown_key_is_named() {
    let err = load("[sip]\nudpp = \"127.0.0.1:5060\"\n", &[]).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("udpp") && msg.contains("sip"), "{msg}");
}

#[test]
fn bad_value_is_named() {
    let err = load("[api]\nlisten = \"nowhere\"\n", &[]).unwrap_err();
    assert!(err.to_string().contains("api.listen"), "{err}");
    let err = load("[media]\nrtp_port_min = \"x\"\n", &[]).unwrap_err();
    assert!(err.to_string().contains("media.rtp_port_min"), "{err}");
    let err = load(&format!("{ENTRY}[limits]\npacer_busy_max_pct = 120\n"), &[]).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("limits.pacer_busy_max_pct") && msg.contains("0 to 100"),
        "{msg}"
    );
}

#[test]
fn env_overrides_nest_and_type() {
    let c = load(
        ENTRY,
        &[
            ("PINLESS_API__LISTEN", "127.0.0.1:9090"),
            ("PINLESS_API__BEARER_TOKENS", r#"["a","b"]"#),
            ("PINLESS_LIMITS__MAX_CALLS", "7"),
            ("PINLESS_DIALIN__0__ANSWER_DELAY_MS", "250"),
            ("OTHER_VAR", "ignored"),
        ],
    )
    .unwrap();
    assert_eq!(c.api.listen.to_string(), "127.0.0.1:9090");
    assert_eq!(c.api.bearer_tokens, vec!["a", "b"]);
    assert_eq!(c.limits.max_calls, 7);
    assert_eq!(c.dialin[0].answer_delay, Duration::from_millis(250));
}

#[test]
fn env_override_with_unknown_key_fails() {
    let err = load(ENTRY, &[("PINLESS_API__LISTN", "x")]).unwrap_err();
    assert!(err.to_string().contains("listn"), "{err}");
}

#[test]
fn builtin_defaults_are_valid_and_take_a_call() {
    let c = Config::from_toml_with_env("", std::iter::empty(), true).unwrap();
    assert_eq!(c.dialin.len(), 1);
    assert_eq!(c.api.listen.to_string(), "127.0.0.1:8080");
}

#[test]
fn duplicate_numbers_and_bad_numbers_are_refused() {
    let two = format!("{ENTRY}{}", ENTRY.replace("support", "sales"));
    let err = load(&two.replace("sip:sales@", "sip:support@"), &[]).unwrap_err();
    assert!(err.to_string().contains("dialin[1].sip_uri"), "{err}");
    let err = load(&format!("{ENTRY}phone_number = \"5551234\"\n"), &[]).unwrap_err();
    assert!(err.to_string().contains("dialin[0].phone_number"), "{err}");
}

#[test]
fn cidr_parsing() {
    assert!(parse_cidr("203.0.113.0/24").is_some());
    assert!(parse_cidr("::1").is_some());
    assert!(parse_cidr("203.0.113.0/33").is_none());
    assert!(parse_cidr("nope").is_none());
}

#[test]
fn shipped_config_files_are_valid() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/config");
    let mut checked = 0;
    for file in std::fs::read_dir(dir).unwrap() {
        let path = file.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path).unwrap();
            load(&text, &[]).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            checked += 1;
        }
    }
    assert!(checked >= 3, "pinless.toml and the two-site pair");
}

#[test]
fn call_policy_keys_are_checked() {
    let with = |extra: &str| load(&format!("{ENTRY}{extra}\n"), &[]);
    let c = with("on_room_hangup = \"hold\"\ntransfer_timeout_secs = 5").unwrap();
    assert_eq!(c.dialin[0].on_room_hangup, OnRoomHangup::Hold);
    let e = with("hold_timeout_action = \"transfer\"").unwrap_err();
    assert!(e.to_string().contains("dialin[0].timeout_sip_uri"), "{e}");
    let e = with("on_room_hangup = \"park\"").unwrap_err();
    assert!(e.to_string().contains("on_room_hangup"), "{e}");
    let e = with("events_url = \"ftp://x\"").unwrap_err();
    assert!(e.to_string().contains("dialin[0].events_url"), "{e}");
    let e = with("header_policy = { allow = [\"X-*-Id\"] }").unwrap_err();
    assert!(e.to_string().contains("header_policy.allow[0]"), "{e}");
    let e = with("header_policy = { rename = { \"X-A\" = \"Via\" } }").unwrap_err();
    assert!(e.to_string().contains("header_policy.rename.X-A"), "{e}");
}

#[test]
fn hold_experience_keys_parse_and_are_checked() {
    // SRTP entries need a TLS listener (see the end).
    let tls = [
        ("PINLESS_SIP__TLS", "127.0.0.1:5061"),
        ("PINLESS_SIP__TLS_CERT", "cert.pem"),
        ("PINLESS_SIP__TLS_KEY", "key.pem"),
    ];
    let with = |extra: &str| load(&format!("{ENTRY}{extra}\n"), &tls);
    let c = with(
        "answer = \"early\"\nearly_media_max_secs = 30\nannounce_position_every_secs = 45\n\
         dtmf_transfer = { \"0\" = \"sip:operator@127.0.0.1\", \"#\" = \"sips:desk@example.com\" }\n\
         media_encryption = \"allow\"",
    )
    .unwrap();
    let d = &c.dialin[0];
    assert_eq!(d.answer, crate::config::AnswerMode::Early);
    assert_eq!(d.early_media_max, Duration::from_secs(30));
    assert_eq!(d.announce_position_every, Duration::from_secs(45));
    assert_eq!(d.dtmf_transfer.len(), 2);
    let plain = with("").unwrap();
    assert_eq!(plain.dialin[0].answer, crate::config::AnswerMode::Now);
    assert_eq!(plain.dialin[0].early_media_max, Duration::from_secs(120));
    let e = with("answer = \"later\"").unwrap_err();
    assert!(e.to_string().contains("answer"), "{e}");
    let e = with("answer = \"early\"\nearly_media_max_secs = 0").unwrap_err();
    assert!(
        e.to_string().contains("dialin[0].early_media_max_secs"),
        "{e}"
    );
    let e = with("dtmf_transfer = { \"12\" = \"sip:a@b\" }").unwrap_err();
    assert!(e.to_string().contains("dialin[0].dtmf_transfer.12"), "{e}");
    let e = with("dtmf_transfer = { \"5\" = \"sip:op@\" }").unwrap_err();
    assert!(e.to_string().contains("dialin[0].dtmf_transfer.5"), "{e}");
    let e = with("dtmf_transfer = { \"5\" = \"http://x\" }").unwrap_err();
    assert!(e.to_string().contains("dialin[0].dtmf_transfer.5"), "{e}");
    // SRTP is built: "require" is taken (issue 15), a wrong word is not.
    let c = with("media_encryption = \"require\"").unwrap();
    assert_eq!(
        c.dialin[0].media_encryption,
        crate::config::MediaEncryption::Require
    );
    let e = with("media_encryption = \"always\"").unwrap_err();
    assert!(e.to_string().contains("media_encryption"), "{e}");
    // Without a TLS listener no SRTP offer could be taken: said at load.
    for policy in ["allow", "require"] {
        let text = format!("{ENTRY}media_encryption = \"{policy}\"\n");
        let e = load(&text, &[]).unwrap_err();
        assert!(e.to_string().contains("dialin[0].media_encryption"), "{e}");
    }
    assert!(load(&format!("{ENTRY}media_encryption = \"disable\"\n"), &[]).is_ok());
}

#[test]
fn an_entry_open_to_anyone_must_say_so() {
    let closed = ENTRY.replace("open = true\n", "");
    let e = load(&closed, &[]).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("dialin[0].open") && text.contains("\"support\""),
        "{text}"
    );
    let restricted = format!("{closed}allowed_cidrs = [\"203.0.113.0/24\"]\n");
    assert!(load(&restricted, &[]).is_ok());
    let with_creds =
        format!("{closed}credentials = [{{ username = \"joe\", password = \"pw\" }}]\n");
    assert!(load(&with_creds, &[]).is_ok());
    let empty_pw = format!("{closed}credentials = [{{ username = \"joe\", password = \"\" }}]\n");
    assert!(
        load(&empty_pw, &[])
            .unwrap_err()
            .to_string()
            .contains("credentials[0]")
    );
}

#[test]
fn address_errors_name_the_key_and_value() {
    let err = load("[api]\nlisten = \"nowhere\"\n", &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "config key `api.listen`: \"nowhere\" is not an IP:port address"
    );
    let err = load(&format!("{ENTRY}[api]\nlisten = \"\"\n"), &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "config key `api.listen`: must not be empty"
    );
    let err = load(&format!("{ENTRY}[sip]\ntcp = \"x:1\"\n"), &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "config key `sip.tcp`: \"x:1\" is not an IP:port address"
    );
    let err = load(&format!("{ENTRY}[media]\npublic_ip = \"me\"\n"), &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "config key `media.public_ip`: not an IP address"
    );
    let c = load(&format!("{ENTRY}[sip]\nudp = \"\"\n"), &[]).unwrap();
    assert_eq!(c.sip.udp, None);
    let err = load(&format!("{ENTRY}[sip]\nudp = \"\"\ntcp = \"\"\n"), &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "config key `sip`: every SIP transport is disabled"
    );
}

#[test]
fn file_and_syntax_errors_keep_their_source() {
    use std::error::Error as _;
    let err = Config::load(
        Some(Path::new("/nonexistent/pinless.toml")),
        std::iter::empty(),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot read config file /nonexistent/pinless.toml: ")
    );
    assert!(err.source().is_some_and(|s| s.is::<std::io::Error>()));
    let err = load("[sip", &[]).unwrap_err();
    assert!(
        err.to_string().starts_with("config is not valid TOML: "),
        "{err}"
    );
    assert!(err.source().is_some());
}

#[test]
fn rtp_timeout_defaults_to_30_s_and_0_turns_it_off() {
    assert_eq!(
        load(ENTRY, &[]).unwrap().media.rtp_timeout,
        Some(std::time::Duration::from_secs(30))
    );
    let off = load(&format!("{ENTRY}[media]\nrtp_timeout_secs = 0\n"), &[]).unwrap();
    assert_eq!(off.media.rtp_timeout, None);
    let env = load(ENTRY, &[("PINLESS_MEDIA__RTP_TIMEOUT_SECS", "2")]).unwrap();
    assert_eq!(
        env.media.rtp_timeout,
        Some(std::time::Duration::from_secs(2))
    );
    let err = load(&format!("{ENTRY}[media]\nrtp_timeout_secs = -1\n"), &[]).unwrap_err();
    assert!(err.to_string().contains("media.rtp_timeout_secs"), "{err}");
}

#[test]
fn media_bind_ip_defaults_to_public_ip_and_is_checked() {
    use std::net::IpAddr;
    let c = load(&format!("{ENTRY}[media]\npublic_ip = \"127.0.0.2\"\n"), &[]).unwrap();
    assert_eq!(c.media.bind_ip, None);
    assert_eq!(c.media.bind_addr(), "127.0.0.2".parse::<IpAddr>().unwrap());
    let text = format!("{ENTRY}[media]\npublic_ip = \"203.0.113.7\"\nbind_ip = \"0.0.0.0\"\n");
    let c = load(&text, &[]).unwrap();
    assert_eq!(c.media.bind_addr(), "0.0.0.0".parse::<IpAddr>().unwrap());
    assert_eq!(c.media.public_ip, "203.0.113.7".parse::<IpAddr>().unwrap());
    let env = load(ENTRY, &[("PINLESS_MEDIA__BIND_IP", "10.0.0.5")]).unwrap();
    assert_eq!(env.media.bind_ip, Some("10.0.0.5".parse().unwrap()));
    let err = load(&format!("{ENTRY}[media]\nbind_ip = \"eth0\"\n"), &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "config key `media.bind_ip`: \"eth0\" is not an IP address"
    );
}

#[test]
fn cluster_is_off_by_default_and_its_keys_are_checked() {
    let c = load(ENTRY, &[]).unwrap();
    assert!(!c.cluster.enabled());
    let text = format!(
        "{ENTRY}[cluster]\nredis_url = \"redis://127.0.0.1:6379/0\"\nadvertise_api = \"http://10.0.0.5:8080\"\n"
    );
    let c = load(&text, &[]).unwrap();
    assert!(c.cluster.enabled());
    assert_eq!(c.cluster.advertise_api, "http://10.0.0.5:8080");
    let env = load(
        ENTRY,
        &[
            ("PINLESS_CLUSTER__REDIS_URL", "redis://127.0.0.1:6380/1"),
            (
                "PINLESS_CLUSTER__ADVERTISE_API",
                "https://node1.example.com/",
            ),
        ],
    )
    .unwrap();
    assert_eq!(env.cluster.redis_url, "redis://127.0.0.1:6380/1");
    // A cluster node that does not say where the others reach it.
    let err = load(
        &format!("{ENTRY}[cluster]\nredis_url = \"redis://127.0.0.1:6379/0\"\n"),
        &[],
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("config key `cluster.advertise_api`: "),
        "{err}"
    );
    let err = load(
        &format!(
            "{ENTRY}[cluster]\nredis_url = \"redis://127.0.0.1:6379/0\"\nadvertise_api = \"10.0.0.5:8080\"\n"
        ),
        &[],
    )
    .unwrap_err();
    assert!(err.to_string().contains("cluster.advertise_api"), "{err}");
    let err = load(
        &format!(
            "{ENTRY}[cluster]\nredis_url = \"http://127.0.0.1\"\nadvertise_api = \"http://10.0.0.5:8080\"\n"
        ),
        &[],
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("config key `cluster.redis_url`: "),
        "{err}"
    );
    let err = load(&format!("{ENTRY}[cluster]\nredis = \"x\"\n"), &[]).unwrap_err();
    assert!(err.to_string().contains("redis"), "{err}");
}

#[test]
fn media_threads_default_to_the_cores_and_bad_values_name_the_key() {
    let auto = load(ENTRY, &[]).unwrap();
    assert_eq!(auto.media.threads, 0);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(auto.media.media_threads(), cores);
    assert!(auto.media.media_threads() >= 1);
    let two = load(&format!("{ENTRY}[media]\nthreads = 2\n"), &[]).unwrap();
    assert_eq!(two.media.media_threads(), 2);
    let env = load(ENTRY, &[("PINLESS_MEDIA__THREADS", "3")]).unwrap();
    assert_eq!(env.media.media_threads(), 3);
    for bad in ["-1", "\"two\"", "70000", "1025"] {
        let err = load(&format!("{ENTRY}[media]\nthreads = {bad}\n"), &[]).unwrap_err();
        assert!(err.to_string().contains("media.threads"), "{bad}: {err}");
    }
}

#[test]
fn media_codecs_default_to_all_three_and_bad_lists_name_the_key() {
    use crate::codec::AudioCodec;
    let default = load(ENTRY, &[]).unwrap();
    assert_eq!(
        default.media.codecs,
        [AudioCodec::Pcmu, AudioCodec::Pcma, AudioCodec::G722]
    );
    let wide = load(
        &format!("{ENTRY}[media]\ncodecs = [\"g722\", \"PCMA\"]\n"),
        &[],
    )
    .unwrap();
    assert_eq!(wide.media.codecs, [AudioCodec::G722, AudioCodec::Pcma]);
    let env = load(ENTRY, &[("PINLESS_MEDIA__CODECS", r#"["PCMU"]"#)]).unwrap();
    assert_eq!(env.media.codecs, [AudioCodec::Pcmu]);
    // Opus is opted into, by its SDP name in any case.
    let opus = load(
        &format!("{ENTRY}[media]\ncodecs = [\"opus\", \"PCMU\"]\n"),
        &[],
    )
    .unwrap();
    assert_eq!(opus.media.codecs, [AudioCodec::Opus, AudioCodec::Pcmu]);
    for (bad, why) in [
        ("[]", "at least one"),
        ("[\"iLBC\"]", "\"iLBC\" is not a codec"),
        ("[\"PCMU\", \"pcmu\"]", "twice"),
        ("\"PCMU\"", "media.codecs"),
    ] {
        let err = load(&format!("{ENTRY}[media]\ncodecs = {bad}\n"), &[]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("media.codecs") && text.contains(why),
            "{bad}: {text}"
        );
    }
}

#[test]
fn hep_is_off_by_default_and_a_bad_collector_url_names_the_key() {
    let c = load("", &[]).unwrap();
    assert!(c.hep.collector.is_none());
    assert_eq!(c.hep.node_id, 2001);
    let c = load(
        "[hep]\nurl = \"tcp:127.0.0.1:9061\"\nnode_id = 7\npassword = \"x\"\n",
        &[],
    )
    .unwrap();
    assert_eq!((c.hep.node_id, c.hep.password.as_str()), (7, "x"));
    assert_eq!(
        c.hep.collector.map(|c| c.to_string()).as_deref(),
        Some("tcp:127.0.0.1:9061")
    );
    for bad in ["sctp:127.0.0.1:9060", "udp:127.0.0.1", "127.0.0.1:9060"] {
        let e = load(&format!("[hep]\nurl = \"{bad}\"\n"), &[]).unwrap_err();
        assert!(e.to_string().starts_with("config key `hep.url`: "), "{e}");
    }
    let e = load("[hep]\nport = 1\n", &[]).unwrap_err();
    assert!(e.to_string().contains("hep"), "{e}");
}

#[test]
fn recordings_go_under_state_dir_and_upload_or_encryption_is_refused_by_name() {
    let c = load("", &[]).unwrap();
    let state = std::path::Path::new("/var/lib/pinless");
    assert_eq!(c.recording.dir_in(state), state.join("recordings"));
    assert_eq!(c.recording.retention_days, 0);
    let c = load(
        "[recording]\ndir = \"/srv/rec\"\nretention_days = 30\n",
        &[],
    )
    .unwrap();
    assert_eq!(c.recording.dir_in(state), std::path::Path::new("/srv/rec"));
    assert_eq!(c.recording.retention_days, 30);
    let e = load("[recording]\nupload = \"s3://b/p\"\n", &[]).unwrap_err();
    assert!(
        e.to_string().starts_with("config key `recording.upload`: "),
        "{e}"
    );
    let e = load("[recording]\nencrypt_to = [\"age1x\"]\n", &[]).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("config key `recording.encrypt_to`: "),
        "{e}"
    );
    let e = load("[[dialin]]\nname_prefix = \"a\"\nsip_uri = \"sip:a@h\"\nroom_creation_api = \"http://h/\"\nopen = true\nrecord = \"always\"\n", &[]).unwrap_err();
    assert!(e.to_string().contains("record"), "{e}");
}
