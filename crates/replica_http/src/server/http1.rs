//! A small HTTP/1.1 server: what agents and browsers send, with hard
//! bounds.
//!
//! One thread accepts connections, one thread serves each connection
//! (keep-alive, one request at a time), at most [`MAX_CONNECTIONS`] at
//! once. A request head is at most [`MAX_HEAD_BYTES`]; a body, sent with
//! `Content-Length` or chunked, at most the handler's limit: a larger one is
//! answered 413 and the connection closed without reading it, so an
//! announced length costs nothing. `Expect: 100-continue` is honoured.
//! Idle connections close after [`IDLE_TIMEOUT`].

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Connections served at once; more are closed on accept.
pub(crate) const MAX_CONNECTIONS: usize = 256;
/// The request line and headers, together.
pub(crate) const MAX_HEAD_BYTES: usize = 64 * 1024;
/// A connection with no request (or a stalled one) for this long closes.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// A request as read from the connection.
#[derive(Debug)]
pub(crate) struct Request {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An answer.
#[derive(Debug)]
pub(crate) struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// What answers requests.
pub(crate) trait Service: Send + Sync + 'static {
    /// The largest body accepted.
    fn max_body(&self) -> usize;
    fn serve(&self, request: &Request) -> Response;
    /// The answer to a request that could not be read (status, reason).
    fn refuse(&self, status: u16, reason: String) -> Response;
}

/// Why no request was read.
enum ReadError {
    /// The client closed the connection (or it timed out) between requests.
    Closed,
    /// Answer this, then close.
    Refuse(u16, String),
}

/// Accepts connections until `stop` is set (and a connection wakes the
/// accept).
pub(crate) fn accept_loop<S: Service>(
    listener: TcpListener,
    service: Arc<S>,
    stop: Arc<AtomicBool>,
) {
    let active = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else {
            // Out of descriptors or an aborted handshake: try again shortly.
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        if active.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
            continue; // dropped: closed
        }
        active.fetch_add(1, Ordering::SeqCst);
        let service = service.clone();
        let active_now = active.clone();
        let spawned = std::thread::Builder::new()
            .name("http-connection".into())
            .spawn(move || {
                connection(stream, &*service);
                active_now.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            active.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

fn connection<S: Service>(stream: TcpStream, service: &S) {
    let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IDLE_TIMEOUT));
    let _ = stream.set_nodelay(true);
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        match read_request(&mut reader, &mut writer, service.max_body()) {
            Ok((request, keep_alive)) => {
                let response = service.serve(&request);
                if write_response(&mut writer, &response, !keep_alive).is_err() || !keep_alive {
                    return;
                }
            }
            Err(ReadError::Closed) => return,
            Err(ReadError::Refuse(status, reason)) => {
                let _ = write_response(&mut writer, &service.refuse(status, reason), true);
                return;
            }
        }
    }
}

/// Reads one line (without its CRLF) of at most `budget` bytes, which it
/// decreases.
fn read_line(reader: &mut impl BufRead, budget: &mut usize) -> Result<Option<Vec<u8>>, ReadError> {
    let mut line = Vec::new();
    loop {
        let available = match reader.fill_buf() {
            Ok(b) => b,
            Err(_) => return Err(ReadError::Closed),
        };
        if available.is_empty() {
            return if line.is_empty() {
                Ok(None)
            } else {
                Err(ReadError::Closed)
            };
        }
        let (take, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        if take > *budget {
            return Err(ReadError::Refuse(
                431,
                format!("the request head is over {MAX_HEAD_BYTES} bytes"),
            ));
        }
        *budget -= take;
        line.extend_from_slice(&available[..take]);
        reader.consume(take);
        if done {
            while matches!(line.last(), Some(b'\n' | b'\r')) {
                line.pop();
            }
            return Ok(Some(line));
        }
    }
}

fn bad(reason: impl Into<String>) -> ReadError {
    ReadError::Refuse(400, reason.into())
}

fn too_large(found: String, max: usize) -> ReadError {
    ReadError::Refuse(
        413,
        format!("the request body is {found} bytes; at most {max} are accepted"),
    )
}

/// One request and whether the connection stays open after it.
fn read_request(
    reader: &mut BufReader<TcpStream>,
    writer: &mut TcpStream,
    max_body: usize,
) -> Result<(Request, bool), ReadError> {
    let mut budget = MAX_HEAD_BYTES;
    // Empty lines before a request are allowed (RFC 9112, 2.2).
    let line = loop {
        match read_line(reader, &mut budget)? {
            None => return Err(ReadError::Closed),
            Some(l) if l.is_empty() => continue,
            Some(l) => break l,
        }
    };
    let line = String::from_utf8(line).map_err(|_| bad("the request line is not UTF-8"))?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad(format!("malformed request line {line:?}")));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(ReadError::Refuse(505, format!("{version} is not served")));
    }
    let mut headers = Vec::new();
    loop {
        let Some(line) = read_line(reader, &mut budget)? else {
            return Err(ReadError::Closed);
        };
        if line.is_empty() {
            break;
        }
        let line = String::from_utf8(line).map_err(|_| bad("a header is not UTF-8"))?;
        let Some((name, value)) = line.split_once(':') else {
            return Err(bad(format!("malformed header {line:?}")));
        };
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let mut request = Request {
        method: method.to_string(),
        target: target.to_string(),
        headers,
        body: Vec::new(),
    };
    let connection = request
        .header("Connection")
        .unwrap_or("")
        .to_ascii_lowercase();
    let keep_alive = if version == "HTTP/1.0" {
        connection.contains("keep-alive")
    } else {
        !connection.contains("close")
    };
    let chunked = request
        .header("Transfer-Encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    let length = match (chunked, request.header("Content-Length")) {
        (true, _) => None,
        (false, None) => Some(0),
        (false, Some(v)) => Some(
            v.parse::<u64>()
                .map_err(|_| bad(format!("Content-Length {v:?} is not a number")))?,
        ),
    };
    if let Some(n) = length {
        if n > max_body as u64 {
            return Err(too_large(n.to_string(), max_body));
        }
    }
    let expects_continue = request
        .header("Expect")
        .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"));
    if expects_continue && length != Some(0) {
        writer
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .map_err(|_| ReadError::Closed)?;
    }
    match length {
        Some(n) => {
            let mut body = vec![0u8; n as usize];
            reader
                .read_exact(&mut body)
                .map_err(|_| ReadError::Closed)?;
            request.body = body;
        }
        None => request.body = read_chunked(reader, max_body)?,
    }
    Ok((request, keep_alive))
}

fn read_chunked(reader: &mut BufReader<TcpStream>, max_body: usize) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    let mut budget = MAX_HEAD_BYTES;
    loop {
        let Some(line) = read_line(reader, &mut budget)? else {
            return Err(ReadError::Closed);
        };
        let size_text = String::from_utf8_lossy(&line);
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = u64::from_str_radix(size_text, 16)
            .map_err(|_| bad(format!("malformed chunk size {size_text:?}")))?;
        if size == 0 {
            // Trailers, up to the empty line.
            while let Some(l) = read_line(reader, &mut budget)? {
                if l.is_empty() {
                    break;
                }
            }
            return Ok(body);
        }
        if body.len() as u64 + size > max_body as u64 {
            return Err(too_large("more than that".into(), max_body));
        }
        let start = body.len();
        body.resize(start + size as usize, 0);
        reader
            .read_exact(&mut body[start..])
            .map_err(|_| ReadError::Closed)?;
        let mut crlf = [0u8; 2];
        reader
            .read_exact(&mut crlf)
            .map_err(|_| ReadError::Closed)?;
        if crlf != *b"\r\n" {
            return Err(bad("a chunk does not end with CRLF"));
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

fn write_response(writer: &mut TcpStream, response: &Response, close: bool) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Length: {}\r\n",
        response.status,
        reason(response.status),
        response.body.len()
    );
    for (name, value) in &response.headers {
        // Values are ours; a line break in one would split the head.
        if !value.contains(['\r', '\n']) {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    writer.write_all(head.as_bytes())?;
    writer.write_all(&response.body)?;
    writer.flush()
}
