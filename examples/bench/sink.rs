//! A webhook receiver that answers every POST with 200 at once, as a
//! customer's app would: so the benchmark measures holding calls, not
//! webhook retries. Plain HTTP/1.1 with keep-alive, a thread per connection.
//! Each body is passed on with its arrival time, for the modes that act on
//! webhooks (transfer) or time them (cps).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::SystemTime;

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
