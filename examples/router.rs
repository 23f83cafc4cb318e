//! The reference customer app: receives pinless's incoming-call webhook,
//! rejects a bad signature with 401, and transfers the caller to a room
//! (or, for a two-site overflow, to another pinless node's static URI),
//! adding `--header` values to the room INVITE; or, with `--stream-url`,
//! to a voice bot over WebSocket (Twilio Media Streams), `--param` values
//! going to the bot as `customParameters`.
//!
//! ```text
//! cargo run --example router -- --room sip:room@127.0.0.1:5070 \
//!     [--listen 127.0.0.1:9000] [--api http://127.0.0.1:8080] [--token dev-token] \
//!     [--hmac BASE64 | --hmac-file state/hmac-support.key] \
//!     [--header X-Lang=de ...] [--refer]
//! cargo run --example router -- --stream-url ws://127.0.0.1:8765/ws [--param lang=de ...]
//! ```

use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::Arc;
use warp::Filter;
use warp::http::StatusCode;

struct Args {
    listen: SocketAddr,
    api: String,
    token: String,
    key: Vec<u8>,
    target: Target,
    headers: serde_json::Map<String, serde_json::Value>,
    refer: bool,
    /// `streamParameters` for a bot.
    params: serde_json::Map<String, serde_json::Value>,
}

/// Where callers go.
enum Target {
    /// A SIP URI (`--room`).
    Room(String),
    /// A bot's WebSocket URL (`--stream-url`).
    Stream(String),
}

impl Target {
    fn describe(&self) -> String {
        match self {
            Target::Room(uri) => format!("rooms → {uri}"),
            Target::Stream(url) => format!("bot → {url}"),
        }
    }
}

/// Reads `NAME=VALUE` into `into`.
fn pair(
    flag: &str,
    pair: &str,
    into: &mut serde_json::Map<String, serde_json::Value>,
) -> Result<(), String> {
    let (name, v) = pair
        .split_once('=')
        .ok_or(format!("{flag} {pair}: expected NAME=VALUE"))?;
    into.insert(name.to_string(), v.into());
    Ok(())
}

fn parse_args() -> Result<Args, String> {
    let mut listen = "127.0.0.1:9000".to_string();
    let mut api = "http://127.0.0.1:8080".to_string();
    let mut token = "dev-token".to_string();
    let mut hmac = None;
    let mut room = None;
    let mut stream_url = None;
    let mut params = serde_json::Map::new();
    params.insert("routedBy".into(), "router-example".into());
    let mut headers = serde_json::Map::new();
    headers.insert("X-Routed-By".into(), "router-example".into());
    let mut refer = false;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => listen = value()?,
            "--api" => api = value()?,
            "--token" => token = value()?,
            "--hmac" => hmac = Some(value()?),
            "--hmac-file" => {
                let path = value()?;
                hmac = Some(std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?);
            }
            "--room" => room = Some(value()?),
            "--stream-url" => stream_url = Some(value()?),
            "--header" => pair("--header", &value()?, &mut headers)?,
            "--param" => pair("--param", &value()?, &mut params)?,
            "--refer" => refer = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let hmac = hmac
        .unwrap_or_else(|| std::fs::read_to_string("state/hmac-support.key").unwrap_or_default());
    let key = pinless::webhook::decode_secret(&hmac).map_err(|e| format!("--hmac: {e}"))?;
    let target = match (room, stream_url) {
        (Some(uri), None) => Target::Room(uri),
        (None, Some(url)) if refer => {
            return Err(format!("--refer: a bot ({url}) cannot be reached by REFER"));
        }
        (None, Some(url)) => Target::Stream(url),
        (Some(_), Some(_)) => return Err("--room and --stream-url: one or the other".into()),
        (None, None) => {
            return Err("--room sip:room@host or --stream-url ws://host/path is required".into());
        }
    };
    Ok(Args {
        listen: listen
            .parse()
            .map_err(|_| format!("--listen {listen}: not IP:port"))?,
        api: api.trim_end_matches('/').to_string(),
        token,
        key,
        target,
        headers,
        refer,
        params,
    })
}

async fn on_webhook(
    args: Arc<Args>,
    ts: Option<String>,
    sig: Option<String>,
    body: Bytes,
) -> warp::reply::WithStatus<String> {
    let reply = |code: StatusCode, text: &str| warp::reply::with_status(text.to_string(), code);
    let (Some(ts), Some(sig)) = (ts, sig) else {
        return reply(StatusCode::UNAUTHORIZED, "unsigned");
    };
    let Ok(ts_ms) = ts.parse::<u64>() else {
        return reply(StatusCode::UNAUTHORIZED, "bad timestamp");
    };
    let expect = pinless::webhook::pinless_signature(&args.key, ts_ms, &body);
    if !pinless::ct::eq(expect.as_bytes(), sig.as_bytes()) {
        eprintln!("router: bad signature, rejected");
        return reply(StatusCode::UNAUTHORIZED, "bad signature");
    }
    let Ok(event) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return reply(StatusCode::BAD_REQUEST, "not JSON");
    };
    if event.get("Test").is_some() {
        return reply(StatusCode::OK, "verified");
    }
    // A call event (when events_url points here too): log it, nothing to do.
    if let Some(kind) = event.get("type") {
        println!("router: event {kind} for call {}", event["callId"]);
        return reply(StatusCode::OK, "ok");
    }
    println!(
        "router: call {} from {} to {}",
        event["callId"], event["From"], event["To"]
    );
    let update = match &args.target {
        Target::Room(uri) => serde_json::json!({
            "callId": event["callId"],
            "callDomain": event["callDomain"],
            "sipUri": uri,
            "headers": args.headers,
            "mode": if args.refer { "refer" } else { "bridge" },
        }),
        // The bot gets callId, From, To and the caller's X- headers from
        // pinless itself; these parameters are ours to add.
        Target::Stream(url) => serde_json::json!({
            "callId": event["callId"],
            "callDomain": event["callDomain"],
            "streamUrl": url,
            "streamParameters": args.params,
        }),
    };
    let args2 = args.clone();
    // Answer the webhook at once; transfer right after.
    tokio::spawn(async move {
        let url = format!("{}/v1/dialin/pinlessCallUpdate", args2.api);
        match reqwest::Client::new()
            .post(url)
            .bearer_auth(&args2.token)
            .json(&update)
            .send()
            .await
        {
            Ok(r) => println!("router: pinlessCallUpdate → {}", r.status()),
            Err(e) => eprintln!("router: pinlessCallUpdate failed: {e}"),
        }
    });
    reply(StatusCode::OK, "ok")
}

#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(a) => Arc::new(a),
        Err(e) => {
            eprintln!("router: {e}");
            std::process::exit(2);
        }
    };
    let state = args.clone();
    let route = warp::post()
        .and(warp::header::optional::<String>("x-pinless-timestamp"))
        .and(warp::header::optional::<String>("x-pinless-signature"))
        .and(warp::body::content_length_limit(64 * 1024))
        .and(warp::body::bytes())
        .then(move |ts, sig, body| on_webhook(state.clone(), ts, sig, body));
    println!(
        "router: webhooks on http://{}, {}",
        args.listen,
        args.target.describe()
    );
    warp::serve(route).run(args.listen).await;
}
