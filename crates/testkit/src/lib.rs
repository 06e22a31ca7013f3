//! Test support: brokers started in-process on `127.0.0.1:0` with their data in a temp dir,
//! stopped when dropped, and a raw protocol client that sends any request at any version;
//! [`nodes`]: `strand` processes on loopback addresses of their own, to kill, pause and
//! restart.
//!
//! ```no_run
//! # async fn t() -> anyhow::Result<()> {
//! use kafka_protocol::messages::{ApiKey, MetadataRequest, MetadataResponse};
//! let broker = strand_testkit::TestBroker::start(&[]).await?;
//! let mut client = broker.client().await?;
//! let resp: MetadataResponse = client.send(ApiKey::Metadata, 12, &MetadataRequest::default()).await?;
//! assert_eq!(resp.brokers.len(), 1);
//! # Ok(()) }
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod nodes;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use strand_broker::{Broker, BrokerConfig, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A broker running in this process.
pub struct TestBroker {
    pub addr: SocketAddr,
    pub broker: Arc<Broker>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<Result<(), String>>>,
    dir: Option<tempfile::TempDir>,
    data: PathBuf,
    overrides: Vec<(String, String)>,
}

impl TestBroker {
    /// Starts a broker with its own temp dir; `overrides` are Kafka config names.
    pub async fn start(overrides: &[(&str, &str)]) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let data = dir.path().to_owned();
        let overrides: Vec<(String, String)> = overrides
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut b = Self::start_in(&data, &overrides, 0).await?;
        b.dir = Some(dir);
        Ok(b)
    }

    async fn start_in(
        data: &Path,
        overrides: &[(String, String)],
        port: u16,
    ) -> anyhow::Result<Self> {
        let mut map: BTreeMap<String, String> = BTreeMap::new();
        map.insert("listeners".into(), format!("PLAINTEXT://127.0.0.1:{port}"));
        map.insert("log.dirs".into(), data.display().to_string());
        for (k, v) in overrides {
            map.insert(k.clone(), v.clone());
        }
        let mut config = BrokerConfig::from_map(map)?;
        // Port 0 is chosen by the kernel at bind time; the bound listener is handed to the
        // server (never closed and bound again), and what we got is advertised.
        let mut bound = Vec::new();
        for l in config.listeners.clone() {
            let socket = tokio::net::TcpListener::bind(l.bind).await?;
            config.set_bound(&l.name, socket.local_addr()?);
            bound.push((l.name, socket));
        }
        let addr = config.listener;
        let server = Server::with_listeners(config, bound)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let broker = server.broker().clone();
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            server.run(shutdown).await.map_err(|e| e.to_string())
        });
        Ok(Self {
            addr,
            broker,
            stop,
            task: Some(task),
            dir: None,
            data: data.to_owned(),
            overrides: overrides.to_vec(),
        })
    }

    pub fn bootstrap(&self) -> String {
        self.addr.to_string()
    }

    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    pub async fn client(&self) -> anyhow::Result<RawClient> {
        RawClient::connect(self.addr).await
    }

    /// Stops the broker cleanly (flush, checkpoints, clean-shutdown marker).
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            task.await?.map_err(|e| anyhow::anyhow!(e))?;
        }
        Ok(())
    }

    /// Stops cleanly and starts again on the same port and data.
    pub async fn restart(mut self) -> anyhow::Result<Self> {
        self.stop().await?;
        let dir = self.dir.take();
        let mut b = Self::start_in(&self.data, &self.overrides, self.addr.port()).await?;
        b.dir = dir;
        Ok(b)
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// A raw Kafka protocol client: one connection, one request at a time.
pub struct RawClient {
    stream: TcpStream,
    correlation_id: i32,
}

impl RawClient {
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        Ok(Self {
            stream: TcpStream::connect(addr).await?,
            correlation_id: 0,
        })
    }

    /// Sends `req` as `key` v`version` and decodes the response at the same version.
    pub async fn send<Req: Encodable, Resp: Decodable + HeaderVersion>(
        &mut self,
        key: ApiKey,
        version: i16,
        req: &Req,
    ) -> anyhow::Result<Resp> {
        let (header, mut body) = self.roundtrip::<Req, Resp>(key, version, req).await?;
        let _ = header;
        let resp = Resp::decode(&mut body, version)
            .with_context(|| format!("decoding {key:?} v{version} response"))?;
        if body.has_remaining() {
            bail!(
                "{} bytes left after decoding {key:?} v{version} response",
                body.remaining()
            );
        }
        Ok(resp)
    }

    /// Sends a request and returns the response header and undecoded body.
    pub async fn roundtrip<Req: Encodable, Resp: HeaderVersion>(
        &mut self,
        key: ApiKey,
        version: i16,
        req: &Req,
    ) -> anyhow::Result<(ResponseHeader, Bytes)> {
        self.correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("strand-testkit")));
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        header.encode(&mut buf, key.request_header_version(version))?;
        req.encode(&mut buf, version)?;
        let size = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&size.to_be_bytes());
        self.stream.write_all(&buf).await?;
        let header_version = if key == ApiKey::ApiVersions {
            0
        } else {
            Resp::header_version(version)
        };
        let mut frame = self.read_frame().await?;
        let header = ResponseHeader::decode(&mut frame, header_version)?;
        if header.correlation_id != self.correlation_id {
            bail!(
                "correlation id {} does not match {}",
                header.correlation_id,
                self.correlation_id
            );
        }
        Ok((header, frame))
    }

    /// Sends `req` and expects no response (acks=0).
    pub async fn send_only<Req: Encodable>(
        &mut self,
        key: ApiKey,
        version: i16,
        req: &Req,
    ) -> anyhow::Result<()> {
        self.correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id);
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        header.encode(&mut buf, key.request_header_version(version))?;
        req.encode(&mut buf, version)?;
        let size = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&size.to_be_bytes());
        self.stream.write_all(&buf).await?;
        Ok(())
    }

    pub async fn write_raw(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.stream.write_all(bytes).await?;
        Ok(())
    }

    pub async fn read_frame(&mut self) -> anyhow::Result<Bytes> {
        let size = self.stream.read_i32().await?;
        if !(0..=(256 << 20)).contains(&size) {
            bail!("response frame size {size}");
        }
        let mut frame = vec![0u8; size as usize];
        self.stream.read_exact(&mut frame).await?;
        Ok(frame.into())
    }

    /// True if the broker closed the connection (reading gives EOF or an error).
    pub async fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(
            tokio::time::timeout(std::time::Duration::from_secs(5), self.stream.read(&mut b)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }
}
