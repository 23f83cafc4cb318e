//! A webhook receiver that answers every POST with 200 at once, as a
//! customer's app would: so the benchmark measures holding calls, not
//! webhook retries. Plain HTTP/1.1 with keep-alive, a thread per connection.
//! Each body is passed on with its arrival time, for the modes that act on
//! webhooks (transfer) or time them (cps).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Instant, SystemTime};

/// A webhook as it arrived.
pub struct Arrival {
    pub at: SystemTime,
    pub headers: String,
    pub body: Vec<u8>,
}

/// Starts the sink; returns its address and the webhooks as they arrive.
pub fn start() -> std::io::Result<(SocketAddr, mpsc::Receiver<Arrival>)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let tx = tx.clone();
            std::thread::spawn(move || serve(stream, tx));
        }
    });
    Ok((addr, rx))
}

fn serve(stream: TcpStream, tx: mpsc::Sender<Arrival>) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut length = 0usize;
        let mut line = String::new();
        let mut headers = String::new();
        // Request line and headers, up to the blank line.
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            headers.push_str(&line);
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let at = SystemTime::now();
        if writer
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .is_err()
        {
            return;
        }
        let _ = tx.send(Arrival { at, headers, body });
    }
}

/// The `(callId, callDomain)` of the next `n` incoming-call webhooks,
/// waiting until `by` at most.
pub fn calls(
    arrivals: &mpsc::Receiver<Arrival>,
    n: usize,
    by: Instant,
) -> Result<Vec<(String, String)>, String> {
    let mut calls = Vec::new();
    while calls.len() < n {
        let left = by.saturating_duration_since(Instant::now());
        let arrival = arrivals
            .recv_timeout(left)
            .map_err(|_| format!("{} of {n} webhooks arrived", calls.len()))?;
        let body: serde_json::Value =
            serde_json::from_slice(&arrival.body).map_err(|e| e.to_string())?;
        if let (Some(id), Some(domain)) = (body["callId"].as_str(), body["callDomain"].as_str()) {
            calls.push((id.to_string(), domain.to_string()));
        }
    }
    Ok(calls)
}

/// The next `n` incoming-call webhooks by the number in their `header`
/// (a caller header the bench set): number → `(callId, callDomain)`.
pub fn calls_by_header(
    arrivals: &mpsc::Receiver<Arrival>,
    n: usize,
    by: Instant,
    header: &str,
) -> Result<std::collections::HashMap<u32, (String, String)>, String> {
    let mut calls = std::collections::HashMap::new();
    while calls.len() < n {
        let left = by.saturating_duration_since(Instant::now());
        let arrival = arrivals
            .recv_timeout(left)
            .map_err(|_| format!("{} of {n} webhooks arrived", calls.len()))?;
        let body: serde_json::Value =
            serde_json::from_slice(&arrival.body).map_err(|e| e.to_string())?;
        let index = body["sipHeaders"][header]
            .as_str()
            .and_then(|v| v.parse::<u32>().ok());
        if let (Some(i), Some(id), Some(domain)) =
            (index, body["callId"].as_str(), body["callDomain"].as_str())
        {
            calls.insert(i, (id.to_string(), domain.to_string()));
        }
    }
    Ok(calls)
}
