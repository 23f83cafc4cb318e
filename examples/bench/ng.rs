//! Just enough of rtpengine's control protocol ("ng": a cookie, a space,
//! and a bencoded dictionary, over UDP) to set up the relay baseline's
//! calls: `offer` and `answer`, each returning the rewritten SDP.

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

/// A bencoded value. Integers and lists are decoded only to be skipped.
#[derive(Debug)]
#[allow(dead_code)]
enum Value {
    Int(i64),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Dict(BTreeMap<Vec<u8>, Value>),
}

fn encode(dict: &[(&str, &str)]) -> Vec<u8> {
    let mut sorted: Vec<_> = dict.to_vec();
    sorted.sort();
    let mut out = b"d".to_vec();
    for (k, v) in sorted {
        for s in [k, v] {
            out.extend(format!("{}:", s.len()).bytes());
            out.extend(s.bytes());
        }
    }
    out.push(b'e');
    out
}

fn decode(input: &[u8]) -> Option<(Value, &[u8])> {
    match *input.first()? {
        b'i' => {
            let end = input.iter().position(|b| *b == b'e')?;
            let n = std::str::from_utf8(&input[1..end]).ok()?.parse().ok()?;
            Some((Value::Int(n), &input[end + 1..]))
        }
        b'l' => {
            let mut rest = &input[1..];
            let mut items = Vec::new();
            while *rest.first()? != b'e' {
                let (v, r) = decode(rest)?;
                items.push(v);
                rest = r;
            }
            Some((Value::List(items), &rest[1..]))
        }
        b'd' => {
            let mut rest = &input[1..];
            let mut map = BTreeMap::new();
            while *rest.first()? != b'e' {
                let (Value::Bytes(k), r) = decode(rest)? else {
                    return None;
                };
                let (v, r) = decode(r)?;
                map.insert(k, v);
                rest = r;
            }
            Some((Value::Dict(map), &rest[1..]))
        }
        _ => {
            let colon = input.iter().position(|b| *b == b':')?;
            let len: usize = std::str::from_utf8(&input[..colon]).ok()?.parse().ok()?;
            let body = input.get(colon + 1..colon + 1 + len)?;
            Some((Value::Bytes(body.to_vec()), &input[colon + 1 + len..]))
        }
    }
}

/// A control connection to one rtpengine.
pub struct Ng {
    socket: UdpSocket,
    to: SocketAddr,
    cookie: u64,
}

impl Ng {
    pub fn new(to: SocketAddr) -> std::io::Result<Ng> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.set_read_timeout(Some(Duration::from_secs(2)))?;
        Ok(Ng {
            socket,
            to,
            cookie: 0,
        })
    }

    /// Sends `command` and returns the reply's SDP.
    pub fn sdp(&mut self, command: &[(&str, &str)]) -> Result<String, String> {
        self.cookie += 1;
        let cookie = format!("c{}", self.cookie);
        let mut msg = format!("{cookie} ").into_bytes();
        msg.extend(encode(command));
        let mut buf = vec![0u8; 65536];
        for _ in 0..3 {
            self.socket
                .send_to(&msg, self.to)
                .map_err(|e| e.to_string())?;
            let Ok(n) = self.socket.recv(&mut buf) else {
                continue;
            };
            let reply = &buf[..n];
            let Some(body) = reply.strip_prefix(format!("{cookie} ").as_bytes()) else {
                continue;
            };
            let Some((Value::Dict(d), _)) = decode(body) else {
                return Err("unreadable rtpengine reply".into());
            };
            let text = |k: &str| match d.get(k.as_bytes()) {
                Some(Value::Bytes(b)) => Some(String::from_utf8_lossy(b).into_owned()),
                _ => None,
            };
            if text("result").as_deref() != Some("ok") {
                return Err(format!(
                    "rtpengine: {}",
                    text("error-reason").unwrap_or_else(|| format!("{d:?}"))
                ));
            }
            return text("sdp").ok_or_else(|| "rtpengine reply without sdp".into());
        }
        Err("rtpengine does not answer on its ng port".into())
    }
}

/// The media port an SDP offers (first `m=audio`).
pub fn audio_port(sdp: &str) -> Option<u16> {
    sdp.lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|p| p.parse().ok())
}
