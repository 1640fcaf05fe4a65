//! A minimal AWS Lambda Runtime API (the HTTP interface a `provided.al2023` function's bootstrap
//! polls), so tests can run the real `curflow-lambda` binary as Lambda runs it: the binary asks
//! `GET /2018-06-01/runtime/invocation/next` for an event and answers with
//! `POST .../invocation/{id}/response` or `.../error`; a failed start is `POST .../init/error`.
//!
//! Only what `lambda_runtime` uses is implemented: HTTP/1.1 with keep-alive and `Content-Length`
//! bodies, one event at a time (as Lambda sends them to one execution environment).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the function answered for one event.
#[derive(Debug, Clone)]
pub enum Answer {
    /// `POST .../response`: the handler returned `Ok` with this JSON.
    Response(serde_json::Value),
    /// `POST .../error`: the handler returned `Err` (Lambda retries it, then the failure queue).
    Error(serde_json::Value),
    /// `POST .../init/error`: the function could not start.
    InitError(serde_json::Value),
}

/// The server; events are queued with [`RuntimeApi::invoke`].
pub struct RuntimeApi {
    pub address: String,
    events: Sender<(String, serde_json::Value)>,
    answers: Receiver<(String, Answer)>,
    next_id: u64,
}

impl RuntimeApi {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let (events, pending) = channel::<(String, serde_json::Value)>();
        let (answer_tx, answers) = channel();
        let pending = Arc::new(Mutex::new(pending));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let pending = Arc::clone(&pending);
                let answer_tx = answer_tx.clone();
                std::thread::spawn(move || serve(stream, &pending, &answer_tx));
            }
        });
        Self { address, events, answers, next_id: 0 }
    }

    /// Sends `event` to the function and waits for its answer. `None` if the function did not
    /// answer within `timeout` (it died or hangs; the caller checks the process).
    pub fn invoke(&mut self, event: serde_json::Value, timeout: Duration) -> Option<Answer> {
        self.next_id += 1;
        let id = format!("req-{:04}", self.next_id);
        self.events.send((id.clone(), event)).unwrap();
        loop {
            match self.answers.recv_timeout(timeout) {
                Ok((got, answer)) if got == id || matches!(answer, Answer::InitError(_)) => return Some(answer),
                Ok(_) => continue,
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
            }
        }
    }
}

struct Request {
    method: String,
    path: String,
    body: Vec<u8>,
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request { method, path, body })
}

fn respond(stream: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]) -> bool {
    let mut head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/json\r\n", body.len());
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(body)).and_then(|()| stream.flush()).is_ok()
}

fn serve(
    stream: TcpStream,
    pending: &Mutex<Receiver<(String, serde_json::Value)>>,
    answers: &Sender<(String, Answer)>,
) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    while let Some(request) = read_request(&mut reader) {
        let json = || serde_json::from_slice(&request.body).unwrap_or(serde_json::Value::Null);
        let segments: Vec<&str> = request.path.trim_start_matches('/').split('/').collect();
        let ok = match (request.method.as_str(), segments.as_slice()) {
            ("GET", ["2018-06-01", "runtime", "invocation", "next"]) => {
                let next = pending.lock().unwrap().recv();
                let Ok((id, event)) = next else { return };
                let deadline =
                    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() + 900_000;
                let headers = [
                    ("Lambda-Runtime-Aws-Request-Id", id),
                    ("Lambda-Runtime-Deadline-Ms", deadline.to_string()),
                    (
                        "Lambda-Runtime-Invoked-Function-Arn",
                        "arn:aws:lambda:us-east-1:123456789012:function:curflow".into(),
                    ),
                    ("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000;Sampled=0".into()),
                ];
                respond(&mut writer, "200 OK", &headers, &serde_json::to_vec(&event).unwrap())
            }
            ("POST", ["2018-06-01", "runtime", "invocation", id, "response"]) => {
                answers.send((id.to_string(), Answer::Response(json()))).ok();
                respond(&mut writer, "202 Accepted", &[], b"{}")
            }
            ("POST", ["2018-06-01", "runtime", "invocation", id, "error"]) => {
                answers.send((id.to_string(), Answer::Error(json()))).ok();
                respond(&mut writer, "202 Accepted", &[], b"{}")
            }
            ("POST", ["2018-06-01", "runtime", "init", "error"]) => {
                answers.send((String::new(), Answer::InitError(json()))).ok();
                respond(&mut writer, "202 Accepted", &[], b"{}")
            }
            _ => respond(&mut writer, "404 Not Found", &[], b"{}"),
        };
        if !ok {
            return;
        }
    }
}
