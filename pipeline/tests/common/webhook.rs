//! A local webhook receiver for the alert tests: records every POST body and answers with a status
//! the test can change between runs, after an optional delay.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A receiver on 127.0.0.1. One thread per connection, so concurrent deliveries are served
/// concurrently (a slow receiver keeps a delivery in flight while other runs look at the alert).
pub struct Webhook {
    /// `http://127.0.0.1:PORT/alerts`.
    pub url: String,
    bodies: Arc<Mutex<Vec<String>>>,
    status: Arc<Mutex<u16>>,
}

impl Webhook {
    /// Answers 200 at once.
    pub fn start() -> Self {
        Self::slow(Duration::ZERO)
    }

    /// Answers after `delay`.
    pub fn slow(delay: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/alerts", listener.local_addr().unwrap());
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(Mutex::new(200));
        let (sink, answer) = (Arc::clone(&bodies), Arc::clone(&status));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let (stream, sink, answer) = (stream.unwrap(), Arc::clone(&sink), Arc::clone(&answer));
                std::thread::spawn(move || serve(stream, &sink, &answer, delay));
            }
        });
        Self { url, bodies, status }
    }

    /// Answer `code` from now on.
    pub fn answer(&self, code: u16) {
        *self.status.lock().unwrap() = code;
    }

    /// Every body received so far, in arrival order.
    pub fn bodies(&self) -> Vec<String> {
        self.bodies.lock().unwrap().clone()
    }

    /// How many POSTs arrived.
    pub fn posts(&self) -> usize {
        self.bodies.lock().unwrap().len()
    }
}

fn serve(mut stream: TcpStream, sink: &Mutex<Vec<String>>, status: &Mutex<u16>, delay: Duration) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    sink.lock().unwrap().push(String::from_utf8(body).unwrap());
    std::thread::sleep(delay);
    let code = *status.lock().unwrap();
    let answer = format!("HTTP/1.1 {code} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    // The client may have given up (a timeout): nothing to answer then.
    stream.write_all(answer.as_bytes()).ok();
}
