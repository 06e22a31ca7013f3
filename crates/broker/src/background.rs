//! The broker's background work (coordinator tickers, retention, the log cleaner, transaction
//! completions), owned so that a stopping broker stops it and waits for it: nothing of a
//! stopped broker keeps running against its data dir, where a restarted one may already be.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

pub struct Background {
    stop: watch::Sender<bool>,
    stopped: Arc<AtomicBool>,
    tasks: Mutex<JoinSet<()>>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl Default for Background {
    fn default() -> Self {
        Self {
            stop: watch::channel(false).0,
            stopped: Arc::new(AtomicBool::new(false)),
            tasks: Mutex::new(JoinSet::new()),
            threads: Mutex::new(Vec::new()),
        }
    }
}

impl Background {
    /// Runs `work` until it ends or the broker stops (then it is dropped at its next await).
    pub fn spawn(&self, work: impl Future<Output = ()> + Send + 'static) {
        if self.is_stopping() {
            return;
        }
        let mut stop = self.stop.subscribe();
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        // Finished tasks are reaped as new ones come, so the set does not grow.
        while tasks.try_join_next().is_some() {}
        tasks.spawn(async move {
            tokio::select! {
                () = work => {}
                _ = stop.wait_for(|s| *s) => {}
            }
        });
    }

    /// Runs `work` on a thread of its own; it must return soon after
    /// [`Background::is_stopping`] turns true ([`Background::sleep`] wakes for it).
    pub fn spawn_thread(
        self: &Arc<Self>,
        name: &str,
        work: impl FnOnce(Arc<Background>) + Send + 'static,
    ) -> std::io::Result<()> {
        let me = self.clone();
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || work(me))?;
        self.threads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(handle);
        Ok(())
    }

    pub fn is_stopping(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Sleeps `d` on a thread, waking early if the broker stops; false once it stops.
    pub fn sleep(&self, d: Duration) -> bool {
        let step = Duration::from_millis(50);
        let deadline = std::time::Instant::now() + d;
        while !self.is_stopping() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return true;
            }
            std::thread::sleep(left.min(step));
        }
        false
    }

    /// Stops everything and waits for it (tasks at most `grace`, then they are aborted).
    pub async fn stop(&self, grace: Duration) {
        self.stopped.store(true, Ordering::Release);
        self.stop.send_replace(true);
        let mut tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        let drained =
            tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stop_ends_tasks_and_threads_and_refuses_new_ones() {
        let bg = Arc::new(Background::default());
        let ticks = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let t = ticks.clone();
        bg.spawn(async move {
            loop {
                t.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        let (tx, rx) = std::sync::mpsc::channel();
        bg.spawn_thread("test", move |bg| {
            while bg.sleep(Duration::from_secs(60)) {}
            tx.send(()).unwrap();
        })
        .unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
        bg.stop(Duration::from_secs(5)).await;
        assert!(
            rx.try_recv().is_ok(),
            "the thread ended before stop returned"
        );
        let seen = ticks.load(Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(ticks.load(Ordering::Relaxed), seen, "the task still runs");
        bg.spawn(async { panic!("spawned after stop") });
    }
}
