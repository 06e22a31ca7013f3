//! The listeners: accept connections up to `max.connections` (across all listeners) and stop
//! on the shutdown signal.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::broker::Broker;
use crate::connection;

/// A running broker.
pub struct Server {
    broker: Arc<Broker>,
    listeners: Vec<(Arc<crate::listeners::Listener>, TcpListener)>,
}

impl Server {
    /// Binds the broker's listeners, then opens its data and registers it.
    pub async fn bind(config: crate::BrokerConfig) -> Result<Self, crate::broker::StartError> {
        let mut bound = Vec::with_capacity(config.listeners.len());
        for l in &config.listeners {
            let listener = TcpListener::bind(l.bind).await.map_err(|e| {
                crate::broker::StartError::Other(format!(
                    "cannot listen on {} ({}): {e}",
                    l.bind, l.name
                ))
            })?;
            bound.push((l.name.clone(), listener));
        }
        Self::with_listeners(config, bound).await
    }

    /// Opens the broker's data and registers it, serving each named listener on the socket
    /// given, bound by the caller (so that a port chosen at run time is never given up and
    /// taken again; [`crate::BrokerConfig::set_bound`] records it).
    pub async fn with_listeners(
        config: crate::BrokerConfig,
        bound: Vec<(String, TcpListener)>,
    ) -> Result<Self, crate::broker::StartError> {
        let mut listeners = Vec::with_capacity(bound.len());
        for (name, socket) in bound {
            let l = config
                .listeners
                .iter()
                .find(|l| l.name == name)
                .cloned()
                .ok_or_else(|| {
                    crate::broker::StartError::Other(format!("no listener named {name}"))
                })?;
            listeners.push((Arc::new(l), socket));
        }
        for l in &config.controller_listeners {
            tracing::info!(listener = %l.name, addr = %l.bind, "controller listener not served: this node is its own single-voter metadata quorum");
        }
        let broker = Broker::open(config)?;
        broker
            .register()
            .await
            .map_err(|e| crate::broker::StartError::Other(e.message))?;
        Ok(Self { broker, listeners })
    }

    /// Where each listener is bound.
    pub fn local_addrs(&self) -> std::io::Result<Vec<(String, SocketAddr)>> {
        self.listeners
            .iter()
            .map(|(l, s)| Ok((l.name.clone(), s.local_addr()?)))
            .collect()
    }

    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    /// Serves until `shutdown` resolves, then closes connections, stops the background work
    /// and closes the logs cleanly.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> Result<(), strand_storage::LogError> {
        let (stop_conns, stopped) = watch::channel(false);
        let mut shutdown = std::pin::pin!(shutdown);
        let limit = Arc::new(Semaphore::new(self.broker.config.max_connections));
        let mut conns = JoinSet::new();
        // Each listener accepts on a task of its own and hands connections over.
        let (accepted_tx, mut accepted) = tokio::sync::mpsc::channel(64);
        let mut acceptors = JoinSet::new();
        for (listener, socket) in self.listeners {
            let tx = accepted_tx.clone();
            acceptors.spawn(async move {
                loop {
                    match socket.accept().await {
                        Ok((stream, peer)) => {
                            if tx.send((stream, peer, listener.clone())).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(listener = %listener.name, error = %e, "accept failed");
                            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                        }
                    }
                }
            });
        }
        drop(accepted_tx);
        loop {
            let (stream, peer, listener) = tokio::select! {
                a = accepted.recv() => match a {
                    Some(a) => a,
                    None => break,
                },
                () = &mut shutdown => break,
            };
            let Ok(permit) = limit.clone().try_acquire_owned() else {
                tracing::warn!(%peer, "max.connections reached; refusing connection");
                continue;
            };
            let broker = self.broker.clone();
            let stop = stopped.clone();
            let session = connection::Session { peer, listener };
            conns.spawn(async move {
                connection::serve(broker, stream, session, stop).await;
                drop(permit);
            });
            while conns.try_join_next().is_some() {}
        }
        tracing::info!("shutting down: closing connections");
        stop_conns.send_replace(true);
        acceptors.abort_all();
        while acceptors.join_next().await.is_some() {}
        let drain = async { while conns.join_next().await.is_some() {} };
        if tokio::time::timeout(std::time::Duration::from_secs(10), drain)
            .await
            .is_err()
        {
            conns.abort_all();
        }
        let broker = self.broker;
        broker
            .background
            .stop(std::time::Duration::from_secs(10))
            .await;
        tokio::task::spawn_blocking(move || broker.shutdown())
            .await
            .unwrap_or_else(|e| {
                Err(strand_storage::LogError::Offline(format!(
                    "shutdown task failed: {e}"
                )))
            })
    }
}
