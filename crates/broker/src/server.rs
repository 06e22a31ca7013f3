//! The listener: accepts connections up to `max.connections` and stops on the shutdown signal.

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
    listener: TcpListener,
}

impl Server {
    /// Binds the broker's listener, then opens its data and registers it.
    pub async fn bind(config: crate::BrokerConfig) -> Result<Self, crate::broker::StartError> {
        let listen = config.listener;
        let listener = TcpListener::bind(listen).await.map_err(|e| {
            crate::broker::StartError::Other(format!("cannot listen on {listen}: {e}"))
        })?;
        Self::with_listener(config, listener).await
    }

    /// Opens the broker's data and registers it, serving on `listener`, bound by the caller
    /// (so that a port chosen at run time is never given up and taken again).
    pub async fn with_listener(
        config: crate::BrokerConfig,
        listener: TcpListener,
    ) -> Result<Self, crate::broker::StartError> {
        let broker = Broker::open(config)?;
        broker
            .register()
            .await
            .map_err(|e| crate::broker::StartError::Other(e.message))?;
        Ok(Self { broker, listener })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
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
        loop {
            let accepted = tokio::select! {
                a = self.listener.accept() => a,
                () = &mut shutdown => break,
            };
            let (stream, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            };
            let Ok(permit) = limit.clone().try_acquire_owned() else {
                tracing::warn!(%peer, "max.connections reached; refusing connection");
                continue;
            };
            let broker = self.broker.clone();
            let stop = stopped.clone();
            conns.spawn(async move {
                connection::serve(broker, stream, peer, stop).await;
                drop(permit);
            });
            while conns.try_join_next().is_some() {}
        }
        tracing::info!("shutting down: closing connections");
        stop_conns.send_replace(true);
        drop(self.listener);
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
