//! The gRPC listener: TCP (plain or TLS) or a Unix socket, turned into a stream
//! of connections for tonic. Each connection must send its first bytes (the
//! HTTP/2 preface, or complete the TLS handshake) within the header-read
//! timeout, in a task of its own: a silent client never holds up the accept
//! loop, and never holds a socket for long.

use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UnixListener};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::conn::Conn;
use crate::config::Listen;
use crate::tls::{ReloadingTls, peer_identity};

/// Accepted connections waiting for the server to take them.
const BACKLOG: usize = 64;

/// A bound listener.
pub enum Bound {
    /// TCP.
    Tcp(TcpListener),
    /// A Unix socket at this path, removed when the listener is dropped.
    Unix(UnixListener, SocketFile),
}

/// Removes the socket file when dropped, so a restart finds the path free.
pub struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl Bound {
    /// Binds `listen`. A Unix socket path left behind by a process that is
    /// gone is replaced; one a live process still answers on is an error.
    pub async fn bind(listen: &Listen) -> io::Result<Self> {
        match listen {
            Listen::Tcp(addr) => Ok(Bound::Tcp(TcpListener::bind(addr).await?)),
            Listen::Unix { path, mode } => {
                remove_stale(path).await?;
                let listener = UnixListener::bind(path)?;
                let file = SocketFile(path.clone());
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(*mode))?;
                Ok(Bound::Unix(listener, file))
            }
        }
    }

    /// The TCP address, for logs and for tests that bind port 0.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Bound::Tcp(l) => l.local_addr(),
            Bound::Unix(..) => Err(io::Error::other("a Unix socket has no TCP address")),
        }
    }

    /// What to print in the "listening on" line.
    pub fn describe(&self) -> String {
        match self {
            Bound::Tcp(l) => l
                .local_addr()
                .map_or_else(|_| "tcp".into(), |a| a.to_string()),
            Bound::Unix(_, SocketFile(path)) => format!("unix:{}", path.display()),
        }
    }

    async fn accept(&self) -> io::Result<Conn> {
        match self {
            Bound::Tcp(l) => {
                let (stream, _) = l.accept().await?;
                let _ = stream.set_nodelay(true);
                Ok(Conn::Tcp(stream))
            }
            Bound::Unix(l, _) => Ok(Conn::Unix(l.accept().await?.0)),
        }
    }

    /// The accepted connections, TLS-wrapped when `tls` is given; ends when
    /// the stream is dropped.
    pub fn incoming(
        self,
        tls: Option<ReloadingTls>,
        first_bytes: Duration,
    ) -> ReceiverStream<io::Result<Conn>> {
        let (tx, rx) = mpsc::channel(BACKLOG);
        tokio::spawn(accept_loop(self, tls, first_bytes, tx));
        ReceiverStream::new(rx)
    }
}

/// Accepts until the server drops the stream; `bound` (and with it a Unix
/// socket's file) lives as long as the loop.
async fn accept_loop(
    bound: Bound,
    tls: Option<ReloadingTls>,
    first_bytes: Duration,
    tx: mpsc::Sender<io::Result<Conn>>,
) {
    loop {
        let accepted = tokio::select! {
            () = tx.closed() => return,
            r = bound.accept() => r,
        };
        let conn = match accepted {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(super::ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        let (tls, tx) = (tls.clone(), tx.clone());
        tokio::spawn(async move {
            let ready = match (tls, conn) {
                (Some(tls), Conn::Tcp(stream)) => handshake(&tls, stream, first_bytes).await,
                (_, conn) => speaks_within(conn, first_bytes).await,
            };
            if let Some(conn) = ready {
                let _ = tx.send(Ok(conn)).await;
            }
        });
    }
}

/// A plaintext TCP `conn` once its first byte has arrived (or it closed),
/// or `None` when it stays silent for `limit`: a connection that never sends
/// the HTTP/2 preface is closed instead of held. (A Unix socket is local and
/// guarded by its file mode, and passes at once.)
async fn speaks_within(conn: Conn, limit: Duration) -> Option<Conn> {
    let Conn::Tcp(stream) = &conn else {
        return Some(conn);
    };
    let mut first = [0u8; 1];
    match tokio::time::timeout(limit, stream.peek(&mut first)).await {
        Ok(Ok(_)) => Some(conn),
        Ok(Err(_)) => None,
        Err(_) => {
            tracing::debug!("connection sent nothing within the header-read timeout; closed");
            None
        }
    }
}

/// Completes the TLS handshake within `limit`; under mutual TLS, refuses a
/// client certificate that names no identity (it would have no namespace of
/// its own).
async fn handshake(
    tls: &ReloadingTls,
    stream: tokio::net::TcpStream,
    limit: Duration,
) -> Option<Conn> {
    let peer = stream.peer_addr().ok();
    let stream = match tokio::time::timeout(limit, tls.acceptor().accept(stream)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::info!(?peer, error = %e, "TLS handshake failed");
            return None;
        }
        Err(_) => {
            tracing::info!(?peer, "TLS handshake timed out");
            return None;
        }
    };
    let identity = match tls.mutual {
        false => None,
        true => {
            let leaf = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first());
            match leaf.and_then(peer_identity) {
                Some(id) => Some(Arc::<str>::from(id)),
                None => {
                    tracing::warn!(
                        ?peer,
                        "client certificate names no SPIFFE ID or DNS name; connection refused"
                    );
                    return None;
                }
            }
        }
    };
    Some(Conn::Tls(Box::new(stream), identity))
}

/// Removes a socket file no process answers on.
async fn remove_stale(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "the path exists and is not a socket",
        ));
    }
    match tokio::net::UnixStream::connect(path).await {
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "another process is listening on it",
        )),
        Err(_) => std::fs::remove_file(path),
    }
}
