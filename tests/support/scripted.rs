//! A scripted HTTP/1.1 server on a loopback port: every request gets the next
//! canned answer (the last one repeats), and every request is recorded.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// One canned answer.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Wait this long before answering.
    pub delay: Duration,
    /// Bytes written verbatim instead of a built response, and whether the
    /// connection then stays open without another byte (a stall) rather than
    /// being closed.
    pub raw: Option<(Vec<u8>, bool)>,
}

impl Answer {
    /// A JSON answer.
    pub fn json(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
            delay: Duration::ZERO,
            raw: None,
        }
    }

    /// An answer with any content type.
    pub fn raw(status: u16, content_type: &str, body: Vec<u8>) -> Self {
        Self {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body,
            delay: Duration::ZERO,
            raw: None,
        }
    }

    /// These bytes as the whole answer, then the connection closed: broken
    /// framing, HTTP/1.0, a body cut short.
    pub fn bytes(raw: &[u8]) -> Self {
        Self {
            raw: Some((raw.to_vec(), false)),
            ..Self::json(200, "")
        }
    }

    /// These bytes, then nothing more on an open connection (slowloris).
    pub fn stalled(raw: &[u8]) -> Self {
        Self {
            raw: Some((raw.to_vec(), true)),
            ..Self::json(200, "")
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Delays the answer.
    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// A request as received.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    /// A header's value, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The running server.
pub struct Scripted {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<Received>>>,
}

impl Scripted {
    /// Starts serving `answers` in order.
    pub async fn start(answers: Vec<Answer>) -> Self {
        Self::serve(answers, None).await
    }

    /// Starts serving `answers` over TLS with `tls` (which may require client
    /// certificates); a failed handshake is never recorded as a request.
    pub async fn start_tls(answers: Vec<Answer>, tls: Arc<rustls::ServerConfig>) -> Self {
        Self::serve(answers, Some(tokio_rustls::TlsAcceptor::from(tls))).await
    }

    async fn serve(mut answers: Vec<Answer>, tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // `{self}` in a body stands for this server's own `scheme://addr`.
        let scheme = if tls.is_some() { "https" } else { "http" };
        for answer in &mut answers {
            if let Ok(text) = std::str::from_utf8(&answer.body) {
                answer.body = text
                    .replace("{self}", &format!("{scheme}://{addr}"))
                    .into_bytes();
            }
        }
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        tokio::spawn(async move {
            let mut n = 0usize;
            while let Ok((stream, _)) = listener.accept().await {
                let answer = answers[n.min(answers.len() - 1)].clone();
                n += 1;
                let (log, tls) = (log.clone(), tls.clone());
                tokio::spawn(async move {
                    let _ = match tls {
                        None => serve_one(stream, answer, log).await,
                        Some(tls) => match tls.accept(stream).await {
                            Ok(stream) => serve_one(stream, answer, log).await,
                            Err(_) => Ok(()),
                        },
                    };
                });
            }
        });
        Self { addr, received }
    }

    /// `https://addr`.
    pub fn https_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// `http://addr`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Everything received so far.
    pub fn requests(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

async fn serve_one(
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    answer: Answer,
    log: Arc<Mutex<Vec<Received>>>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_owned();
    let path = first.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let length = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    log.lock().unwrap().push(Received {
        method,
        path,
        headers,
        body,
    });
    tokio::time::sleep(answer.delay).await;
    if let Some((raw, stall)) = &answer.raw {
        stream.write_all(raw).await?;
        stream.flush().await?;
        if *stall {
            tokio::time::sleep(Duration::from_secs(300)).await;
        }
        return stream.shutdown().await;
    }
    let mut out = format!(
        "HTTP/1.1 {} Scripted\r\nContent-Length: {}\r\nConnection: close\r\n",
        answer.status,
        answer.body.len()
    );
    for (k, v) in &answer.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    stream.write_all(out.as_bytes()).await?;
    stream.write_all(&answer.body).await?;
    stream.shutdown().await
}
