//! Nodes as `strand` processes: each on a loopback address of its own (127.0.0.11, .12, ...,
//! so that a test can later cut the link between two), with its data in a temp dir and a port
//! chosen at start, which it keeps across restarts. A node can be killed (`SIGKILL`), stopped
//! (`SIGTERM`, a clean shutdown), paused (`SIGSTOP`) and resumed, and restarted on its data.
//! Every process is one this kit started, signalled by its PID, and killed when the set is
//! dropped.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rustix::process::{kill_process, Pid, Signal};

/// How long a node may take to listen after it is started.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// One `strand broker` process.
pub struct Node {
    pub id: i32,
    pub ip: Ipv4Addr,
    port: u16,
    bin: PathBuf,
    dir: PathBuf,
    overrides: Vec<(String, String)>,
    child: Option<Child>,
    /// Times started, so that each run logs to a file of its own.
    runs: u32,
}

impl Node {
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip.into(), self.port)
    }

    pub fn bootstrap(&self) -> String {
        self.addr().to_string()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    fn log_path(&self, run: u32) -> PathBuf {
        self.dir.join(format!("node-{}.run-{run}.log", self.id))
    }

    /// What the current (or last) run wrote to its log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path(self.runs)).unwrap_or_default()
    }

    /// Starts the process and waits until it listens.
    pub fn start(&mut self) -> anyhow::Result<()> {
        if self.is_running() {
            bail!("node {} is already running", self.id);
        }
        self.runs += 1;
        let log = std::fs::File::create(self.log_path(self.runs))?;
        let mut cmd = Command::new(&self.bin);
        for (k, _) in std::env::vars() {
            if k.starts_with("STRAND_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("STRAND_LOG", "info")
            .arg("broker")
            .args(["--override", &format!("node.id={}", self.id)])
            .args([
                "--override",
                &format!("listeners=PLAINTEXT://{}:{}", self.ip, self.port),
            ])
            .args([
                "--override",
                &format!("log.dirs={}", self.data_dir().display()),
            ]);
        for (k, v) in &self.overrides {
            cmd.args(["--override", &format!("{k}={v}")]);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", self.bin.display()))?;
        self.child = Some(child);
        self.port = self.wait_listening()?;
        Ok(())
    }

    /// Reads the port from the log line the broker writes once it listens.
    fn wait_listening(&mut self) -> anyhow::Result<u16> {
        let deadline = Instant::now() + START_TIMEOUT;
        let wanted = format!("addr={}:", self.ip);
        loop {
            let log = self.log();
            let port = log
                .lines()
                .filter(|l| l.contains("strand broker listening"))
                .find_map(|l| {
                    let rest = &l[l.find(&wanted)? + wanted.len()..];
                    rest.split(|c: char| !c.is_ascii_digit())
                        .next()?
                        .parse()
                        .ok()
                });
            if let Some(port) = port {
                return Ok(port);
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                bail!("node {} exited ({status}):\n{log}", self.id);
            }
            if Instant::now() > deadline {
                bail!(
                    "node {} did not listen within {START_TIMEOUT:?}:\n{log}",
                    self.id
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, signal: Signal) -> anyhow::Result<()> {
        let pid = self.pid().context("not running")?;
        let pid = Pid::from_raw(pid as i32).context("bad pid")?;
        kill_process(pid, signal).with_context(|| format!("signal {signal:?} to node {}", self.id))
    }

    /// `kill -9`, and waits for the process to be gone.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// `SIGTERM` (a clean shutdown), and waits up to `timeout` for the process to exit.
    pub fn stop(&mut self, timeout: Duration) -> anyhow::Result<std::process::ExitStatus> {
        self.signal(Signal::TERM)?;
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut().context("not running")?;
        loop {
            if let Some(status) = child.try_wait()? {
                self.child = None;
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!("node {} did not stop within {timeout:?}", self.id);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `SIGSTOP`: the process holds its sockets but answers nothing.
    pub fn pause(&self) -> anyhow::Result<()> {
        self.signal(Signal::STOP)
    }

    /// `SIGCONT`.
    pub fn resume(&self) -> anyhow::Result<()> {
        self.signal(Signal::CONT)
    }

    /// Kills the process if it runs, then starts it again on its data and port.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill()?;
        self.start()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A set of nodes started together, each with its settings and a temp dir under one root.
pub struct Nodes {
    pub nodes: Vec<Node>,
    _root: tempfile::TempDir,
}

impl Nodes {
    /// Starts `n` nodes of `bin` (the `strand` binary), node ids 1..=n on 127.0.0.11, .12, ...,
    /// each with `overrides` (Kafka config names).
    pub fn start(bin: &Path, n: usize, overrides: &[(&str, &str)]) -> anyhow::Result<Self> {
        let root = tempfile::tempdir()?;
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            let id = i as i32 + 1;
            let dir = root.path().join(format!("node-{id}"));
            std::fs::create_dir_all(&dir)?;
            nodes.push(Node {
                id,
                ip: Ipv4Addr::new(127, 0, 0, 11 + i as u8),
                port: 0,
                bin: bin.to_owned(),
                dir,
                overrides: overrides
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                child: None,
                runs: 0,
            });
        }
        let mut set = Self { nodes, _root: root };
        for node in &mut set.nodes {
            node.start()?;
        }
        Ok(set)
    }

    /// Node `id` (1-based, as its node.id).
    pub fn node(&mut self, id: i32) -> &mut Node {
        let i = usize::try_from(id - 1).unwrap_or(usize::MAX);
        &mut self.nodes[i]
    }

    /// Every node's `host:port`, comma-separated.
    pub fn bootstrap(&self) -> String {
        self.nodes
            .iter()
            .map(Node::bootstrap)
            .collect::<Vec<_>>()
            .join(",")
    }
}
