//! One client connection.
//!
//! A reader task reads frames (size checked before allocating), hands each to the handlers in
//! order, and queues the reply; a writer task sends replies in the same order. A request whose
//! answer must wait (a long-poll fetch, an `acks=all` produce waiting for fsync) does not stop
//! the reader, so pipelined requests keep flowing while per-partition order is kept: appends
//! happen in the reader, in arrival order. The queue is bounded by `queued.max.requests`.
//!
//! An immediate reply with nothing queued before it is written by the reader itself, saving
//! the hand-off to the writer task (a task wake-up, often a thread wake-up). Frames are read
//! through a buffer, so pipelined small requests take one `read` between them rather than two
//! each.
//!
//! Fetch responses of up to 64 KiB are assembled and sent with one write; larger ones go out as
//! header, `sendfile` and trailer on a corked socket.
//!
//! A malformed frame closes this connection only, with a log line.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::BytesMut;
use strand_protocol::fetch::Piece;
use strand_protocol::frame::{frame_len, FrameError, RequestFrame};
use strand_storage::FileSlice;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch, Mutex};

use crate::broker::Broker;
use crate::handlers;

/// A response frame, ready to send.
pub enum Response {
    Bytes(BytesMut),
    /// Protocol bytes and file ranges, sent in order (fetch).
    Pieces(Vec<Piece<Option<FileSlice>>>),
}

/// What a handler answers.
pub enum Reply {
    Now(Response),
    Later(Pin<Box<dyn Future<Output = Reply> + Send>>),
    /// No response at all (`acks=0` produce).
    None,
    /// Close the connection, for this reason.
    Close(String),
}

/// Who is at the other end of a connection, and on which listener it came in.
#[derive(Debug, Clone)]
pub struct Session {
    pub peer: SocketAddr,
    pub listener: Arc<crate::listeners::Listener>,
}

pub async fn serve(
    broker: Arc<Broker>,
    stream: TcpStream,
    session: Session,
    mut shutdown: watch::Receiver<bool>,
) {
    let peer = session.peer;
    let _ = stream.set_nodelay(true);
    let (reader, writer) = stream.into_split();
    let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, reader);
    let writer = Arc::new(Mutex::new(writer));
    // Replies handed to the writer task and not yet written.
    let queued = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel::<Reply>(broker.config.queued_max_requests);
    let writer_task = tokio::spawn(write_loop(writer.clone(), rx, queued.clone(), peer));
    let max = broker.config.socket_request_max_bytes;
    loop {
        let mut prefix = [0u8; 4];
        let read = tokio::select! {
            r = reader.read_exact(&mut prefix) => r,
            _ = shutdown.changed() => break,
        };
        if read.is_err() {
            break; // peer closed
        }
        let size = match frame_len(prefix, max) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(%peer, error = %e, "closing connection");
                break;
            }
        };
        let mut frame = BytesMut::with_capacity(size);
        if read_frame(&mut reader, &mut frame, size).await.is_err() {
            break;
        }
        let frame = match RequestFrame::parse(frame.freeze()) {
            Ok(f) => f,
            Err(FrameError::UnknownApiKey {
                api_key,
                correlation_id,
            }) => {
                tracing::warn!(%peer, api_key, correlation_id, "unknown API key; closing connection as Kafka does");
                break;
            }
            Err(e) => {
                tracing::warn!(%peer, error = %e, "malformed request; closing connection");
                break;
            }
        };
        let mut reply = handlers::dispatch(&broker, frame, &session).await;
        // Nothing is waiting to be written before this reply: write it here. The writer task
        // holds no reply, so it cannot be writing, and only this task queues replies.
        if queued.load(Ordering::Acquire) == 0 {
            reply = match reply {
                Reply::Now(response) => {
                    let mut w = writer.lock().await;
                    if let Err(e) = send(&mut w, response).await {
                        tracing::debug!(%peer, error = %e, "write failed");
                        break;
                    }
                    continue;
                }
                Reply::None => continue,
                later_or_close => later_or_close,
            };
        }
        let close = matches!(reply, Reply::Close(_));
        queued.fetch_add(1, Ordering::AcqRel);
        if tx.send(reply).await.is_err() || close {
            break;
        }
    }
    drop(tx);
    let _ = writer_task.await;
}

/// Enough for many small requests per `read`; larger frames bypass the buffer.
const READ_BUFFER_BYTES: usize = 64 << 10;

/// Fetch responses up to this size are assembled in memory and sent with one write: for a small
/// response the system calls of a header write, a sendfile and a trailer write (each one waking
/// the reader) cost more than copying the records.
const COALESCE_BYTES: usize = 64 << 10;

/// Reads exactly `size` bytes into `frame`'s spare capacity, without zero-filling it first.
async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    frame: &mut BytesMut,
    size: usize,
) -> std::io::Result<()> {
    while frame.len() < size {
        let want = (size - frame.len()) as u64;
        if (&mut *reader).take(want).read_buf(frame).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
    Ok(())
}

async fn write_loop(
    writer: Arc<Mutex<OwnedWriteHalf>>,
    mut rx: mpsc::Receiver<Reply>,
    queued: Arc<AtomicUsize>,
    peer: SocketAddr,
) {
    while let Some(reply) = rx.recv().await {
        let mut reply = reply;
        let response = loop {
            match reply {
                Reply::Now(r) => break Some(r),
                Reply::Later(f) => reply = f.await,
                Reply::None => break None,
                Reply::Close(reason) => {
                    tracing::warn!(%peer, %reason, "closing connection");
                    let _ = writer.lock().await.shutdown().await;
                    return;
                }
            }
        };
        if let Some(response) = response {
            let mut w = writer.lock().await;
            if let Err(e) = send(&mut w, response).await {
                tracing::debug!(%peer, error = %e, "write failed");
                return;
            }
        }
        // Written (or nothing to write): the reader may answer directly again once none
        // is left.
        queued.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn send(writer: &mut OwnedWriteHalf, response: Response) -> std::io::Result<()> {
    match response {
        Response::Bytes(b) => writer.write_all(&b).await,
        Response::Pieces(pieces) => {
            let total: usize = pieces.iter().map(piece_len).sum();
            if total <= COALESCE_BYTES {
                return writer.write_all(&assemble(&pieces, total)?).await;
            }
            // Cork the socket so that the header, the file data and the trailer leave in full
            // segments rather than a small one each; uncorking sends what is left.
            let _ = rustix::net::sockopt::set_tcp_cork(writer.as_ref(), true);
            let sent = send_pieces(writer, pieces).await;
            let _ = rustix::net::sockopt::set_tcp_cork(writer.as_ref(), false);
            sent
        }
    }
}

fn piece_len(p: &Piece<Option<FileSlice>>) -> usize {
    match p {
        Piece::Bytes(b) => b.len(),
        Piece::Records(r) => r.as_ref().map_or(0, |s| s.len),
    }
}

/// One buffer holding the whole response, file data read in.
fn assemble(pieces: &[Piece<Option<FileSlice>>], total: usize) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let mut buf = Vec::with_capacity(total);
    for p in pieces {
        match p {
            Piece::Bytes(b) => buf.extend_from_slice(b),
            Piece::Records(Some(slice)) => {
                let start = buf.len();
                buf.resize(start + slice.len, 0);
                // A short read means the segment shrank under us, as in `send_slice`.
                slice
                    .file
                    .read_exact_at(&mut buf[start..], slice.position)?;
            }
            Piece::Records(None) => {}
        }
    }
    Ok(buf)
}

async fn send_pieces(
    writer: &mut OwnedWriteHalf,
    pieces: Vec<Piece<Option<FileSlice>>>,
) -> std::io::Result<()> {
    for p in pieces {
        match p {
            Piece::Bytes(b) => writer.write_all(&b).await?,
            Piece::Records(Some(slice)) => crate::sendfile::send_slice(writer, &slice).await?,
            Piece::Records(None) => {}
        }
    }
    Ok(())
}
