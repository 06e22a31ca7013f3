//! One multiplexed connection to one broker.
//!
//! Requests are framed by the caller's task and handed to a writer task, which coalesces
//! whatever is queued into one write; a reader task matches each response to its request by
//! correlation id. Any number of requests can be in flight; the broker answers them in order.
//! When the connection breaks every waiting request gets a `Transport` error and the
//! connection is marked dead so the pool opens a new one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Result};

/// The highest version of each API this client has been written for. Produce and Fetch stop
/// before topic ids replace topic names (v13).
pub(crate) fn client_max_version(key: ApiKey) -> i16 {
    match key {
        ApiKey::Produce => 12,
        ApiKey::Fetch => 12,
        ApiKey::Metadata => 12,
        ApiKey::ApiVersions => 3,
        ApiKey::OffsetCommit => 9,
        ApiKey::OffsetFetch => 7,
        ApiKey::ListOffsets => 9,
        // v4+ is the brokers' batched form (verify-only); producers send v3.
        ApiKey::AddPartitionsToTxn => 3,
        _ => i16::MAX,
    }
}

type Reply = oneshot::Sender<Result<Bytes>>;

pub(crate) struct Connection {
    pub addr: String,
    client_id: StrBytes,
    outgoing: mpsc::UnboundedSender<Vec<Bytes>>,
    pending: Arc<Mutex<HashMap<i32, Reply>>>,
    dead: Arc<AtomicBool>,
    next_correlation_id: AtomicI32,
    /// Broker's (min, max) per API key, from ApiVersions.
    versions: HashMap<i16, (i16, i16)>,
    request_timeout: Duration,
}

impl Connection {
    /// Connects, negotiates API versions, and starts the reader and writer tasks.
    pub async fn connect(
        addr: &str,
        client_id: &str,
        setup_timeout: Duration,
        request_timeout: Duration,
        response_bytes_max: usize,
    ) -> Result<Arc<Self>> {
        let transport = |message: String| Error::Transport {
            addr: addr.to_string(),
            message,
        };
        let stream = tokio::time::timeout(setup_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| transport("connect timed out".into()))?
            .map_err(|e| transport(e.to_string()))?;
        stream
            .set_nodelay(true)
            .map_err(|e| transport(e.to_string()))?;
        let (read, write) = stream.into_split();
        let (tx, rx) = mpsc::unbounded_channel();
        let pending: Arc<Mutex<HashMap<i32, Reply>>> = Arc::default();
        let dead = Arc::new(AtomicBool::new(false));
        tokio::spawn(write_loop(write, rx, dead.clone()));
        tokio::spawn(read_loop(
            BufReader::with_capacity(64 << 10, read),
            pending.clone(),
            dead.clone(),
            addr.to_string(),
            response_bytes_max,
        ));
        let mut conn = Connection {
            addr: addr.to_string(),
            client_id: StrBytes::from_string(client_id.to_string()),
            outgoing: tx,
            pending,
            dead,
            next_correlation_id: AtomicI32::new(1),
            versions: HashMap::new(),
            request_timeout,
        };
        let versions = tokio::time::timeout(setup_timeout, conn.api_versions())
            .await
            .map_err(|_| transport("ApiVersions timed out".into()))??;
        conn.versions = versions;
        Ok(Arc::new(conn))
    }

    async fn api_versions(&self) -> Result<HashMap<i16, (i16, i16)>> {
        let req = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("strand-client"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let resp: ApiVersionsResponse = self.send_at(&req, 3).await?;
        if resp.error_code != 0 {
            return Err(Error::kafka(resp.error_code, "ApiVersions"));
        }
        Ok(resp
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect())
    }

    pub fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Relaxed)
    }

    /// The version to use for `R`: the highest both sides speak.
    pub fn version_for<R: Request>(&self) -> Result<i16> {
        let key = ApiKey::try_from(R::KEY).map_err(|_| Error::protocol("unknown api key"))?;
        let ours = (
            R::VERSIONS.min,
            R::VERSIONS.max.min(client_max_version(key)),
        );
        let Some(&(bmin, bmax)) = self.versions.get(&R::KEY) else {
            return Err(Error::Unsupported(format!(
                "{key:?} (not advertised by {})",
                self.addr
            )));
        };
        let v = ours.1.min(bmax);
        if v < ours.0.max(bmin) {
            return Err(Error::Unsupported(format!(
                "{key:?}: broker {} speaks v{bmin}-{bmax}, the client v{}-{}",
                self.addr, ours.0, ours.1
            )));
        }
        Ok(v)
    }

    pub fn supports(&self, key: ApiKey) -> bool {
        self.versions.contains_key(&(key as i16))
    }

    /// Sends `req` at the negotiated version and waits for its response.
    pub async fn send<R: Request>(&self, req: &R) -> Result<R::Response> {
        let v = self.version_for::<R>()?;
        self.send_at(req, v).await
    }

    /// Like [`send`](Self::send), also returning the version used.
    pub async fn send_versioned<R: Request>(&self, req: &R) -> Result<(R::Response, i16)> {
        let v = self.version_for::<R>()?;
        Ok((self.send_at(req, v).await?, v))
    }

    /// Sends `req` at `version`, waits up to `request.timeout.ms` (plus `extra`).
    pub async fn send_at<R: Request>(&self, req: &R, version: i16) -> Result<R::Response> {
        self.send_at_timeout(req, version, self.request_timeout)
            .await
    }

    pub async fn send_at_timeout<R: Request>(
        &self,
        req: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response> {
        let Some(pending) = self.submit(req, version, true)? else {
            return Err(Error::protocol("no reply expected"));
        };
        let key = ApiKey::try_from(R::KEY).map_err(|_| Error::protocol("unknown api key"))?;
        self.reply::<R::Response>(key, version, pending, timeout)
            .await
    }

    fn submit<R: Request>(
        &self,
        req: &R,
        version: i16,
        expect_reply: bool,
    ) -> Result<Option<(i32, oneshot::Receiver<Result<Bytes>>)>> {
        let key = ApiKey::try_from(R::KEY).map_err(|_| Error::protocol("unknown api key"))?;
        let size = req
            .compute_size(version)
            .map_err(|e| Error::protocol(format!("encoding {key:?}: {e}")))?;
        let mut body = BytesMut::with_capacity(size);
        req.encode(&mut body, version)
            .map_err(|e| Error::protocol(format!("encoding {key:?} v{version}: {e}")))?;
        self.submit_chunks(key, version, vec![body.freeze()], expect_reply)
    }

    /// Frames a request whose body is already encoded, as chunks sent back to back (record
    /// batches go out without being copied into the request).
    pub fn submit_chunks(
        &self,
        key: ApiKey,
        version: i16,
        body: Vec<Bytes>,
        expect_reply: bool,
    ) -> Result<Option<(i32, oneshot::Receiver<Result<Bytes>>)>> {
        if self.is_dead() {
            return Err(self.transport("connection closed"));
        }
        let correlation_id = self.next_correlation_id.fetch_add(1, Ordering::Relaxed);
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(self.client_id.clone()));
        let header_version = key.request_header_version(version);
        let header_size = header
            .compute_size(header_version)
            .map_err(|e| Error::protocol(format!("encoding {key:?} header: {e}")))?;
        let size = header_size + body.iter().map(Bytes::len).sum::<usize>();
        let mut head = BytesMut::with_capacity(4 + header_size);
        head.put_i32(size as i32);
        header
            .encode(&mut head, header_version)
            .map_err(|e| Error::protocol(format!("encoding {key:?} v{version} header: {e}")))?;
        let mut frame = Vec::with_capacity(1 + body.len());
        frame.push(head.freeze());
        frame.extend(body);
        let rx = if expect_reply {
            let (tx, rx) = oneshot::channel();
            lock(&self.pending).insert(correlation_id, tx);
            Some((correlation_id, rx))
        } else {
            None
        };
        if self.outgoing.send(frame).is_err() {
            lock(&self.pending).remove(&correlation_id);
            return Err(self.transport("connection closed"));
        }
        Ok(rx)
    }

    /// Waits for the reply to a request sent with [`submit_chunks`](Self::submit_chunks) and
    /// decodes it as `Resp` at `version`.
    pub async fn reply<Resp: Decodable + HeaderVersion>(
        &self,
        key: ApiKey,
        version: i16,
        pending: (i32, oneshot::Receiver<Result<Bytes>>),
        timeout: Duration,
    ) -> Result<Resp> {
        let (correlation_id, rx) = pending;
        let mut body = match tokio::time::timeout(timeout, rx).await {
            Err(_) => {
                lock(&self.pending).remove(&correlation_id);
                return Err(Error::Timeout(format!(
                    "{key:?} v{version} to {} after {timeout:?}",
                    self.addr
                )));
            }
            Ok(Err(_)) => return Err(self.transport("connection closed")),
            Ok(Ok(r)) => r?,
        };
        let header_version = if key == ApiKey::ApiVersions {
            0
        } else {
            Resp::header_version(version)
        };
        ResponseHeader::decode(&mut body, header_version)
            .map_err(|e| Error::protocol(format!("response header: {e}")))?;
        Resp::decode(&mut body, version).map_err(|e| {
            Error::protocol(format!(
                "{key:?} v{version} response from {}: {e}",
                self.addr
            ))
        })
    }

    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    fn transport(&self, message: &str) -> Error {
        Error::Transport {
            addr: self.addr.clone(),
            message: message.to_string(),
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.dead.store(true, Ordering::Relaxed);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn write_loop(
    mut write: tokio::net::tcp::OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Vec<Bytes>>,
    dead: Arc<AtomicBool>,
) {
    let mut frames: Vec<Vec<Bytes>> = Vec::new();
    let mut small = BytesMut::with_capacity(64 << 10);
    'run: while let Some(first) = rx.recv().await {
        frames.push(first);
        while frames.len() < 256 {
            match rx.try_recv() {
                Ok(f) => frames.push(f),
                Err(_) => break,
            }
        }
        // Small chunks are gathered into one write; large ones (record batches) go out as
        // they are, after whatever was gathered before them.
        for chunk in frames.drain(..).flatten() {
            if chunk.len() < 16 << 10 {
                small.extend_from_slice(&chunk);
                continue;
            }
            if !small.is_empty() && write.write_all(&small.split()).await.is_err() {
                break 'run;
            }
            if write.write_all(&chunk).await.is_err() {
                break 'run;
            }
        }
        if !small.is_empty() && write.write_all(&small.split()).await.is_err() {
            break;
        }
        if dead.load(Ordering::Relaxed) {
            break;
        }
    }
    dead.store(true, Ordering::Relaxed);
    let _ = write.shutdown().await;
}

async fn read_loop(
    mut read: BufReader<tokio::net::tcp::OwnedReadHalf>,
    pending: Arc<Mutex<HashMap<i32, Reply>>>,
    dead: Arc<AtomicBool>,
    addr: String,
    response_bytes_max: usize,
) {
    let reason = loop {
        let size = match read.read_i32().await {
            Ok(s) => s,
            Err(e) => break format!("read: {e}"),
        };
        if size < 4 || size as usize > response_bytes_max {
            break format!("response frame of {size} bytes");
        }
        let mut frame = BytesMut::zeroed(size as usize);
        if let Err(e) = read.read_exact(&mut frame).await {
            break format!("read: {e}");
        }
        let frame = frame.freeze();
        let correlation_id = (&frame[..4]).get_i32();
        let Some(reply) = lock(&pending).remove(&correlation_id) else {
            // A request that timed out and was forgotten: drop its late answer.
            continue;
        };
        let _ = reply.send(Ok(frame));
    };
    dead.store(true, Ordering::Relaxed);
    let waiting: Vec<Reply> = lock(&pending).drain().map(|(_, r)| r).collect();
    if !waiting.is_empty() {
        tracing::debug!(%addr, %reason, waiting = waiting.len(), "connection closed");
    }
    for r in waiting {
        let _ = r.send(Err(Error::Transport {
            addr: addr.clone(),
            message: reason.clone(),
        }));
    }
}
