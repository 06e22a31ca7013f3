//! Configuration with Kafka's names (`bootstrap.servers`, `acks`, `linger.ms`, ...).
//!
//! A [`Config`] is a map of strings, as a `.properties` file or `-X key=value` flags give them;
//! each client reads the keys it knows into a typed struct with Kafka's defaults and refuses
//! values it cannot parse. Unknown keys are ignored, as Kafka's clients only warn about them.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::{Error, Result};

/// String-valued settings keyed by Kafka's config names.
#[derive(Debug, Clone, Default)]
pub struct Config {
    values: BTreeMap<String, String>,
}

impl Config {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to `value` (builder style).
    pub fn set(mut self, key: impl Into<String>, value: impl ToString) -> Self {
        self.values.insert(key.into(), value.to_string());
        self
    }

    pub fn insert(&mut self, key: impl Into<String>, value: impl ToString) {
        self.values.insert(key.into(), value.to_string());
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// Parses `key=value` lines (`#` and `!` start comments), as in a `.properties` file.
    pub fn parse_properties(text: &str) -> Result<Self> {
        let mut c = Config::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let Some((k, v)) = line.split_once(['=', ':']) else {
                return Err(Error::Config(format!("line {}: expected key=value", n + 1)));
            };
            c.insert(k.trim(), v.trim());
        }
        Ok(c)
    }

    pub(crate) fn string(&self, key: &str, default: &str) -> String {
        self.get(key).unwrap_or(default).to_string()
    }

    pub(crate) fn parse<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| Error::Config(format!("{key}={v:?} is not a valid value"))),
        }
    }

    pub(crate) fn ms(&self, key: &str, default_ms: u64) -> Result<Duration> {
        let v: i64 = self.parse(key, default_ms as i64)?;
        if v < 0 {
            return Err(Error::Config(format!("{key}={v} must not be negative")));
        }
        Ok(Duration::from_millis(v as u64))
    }

    pub(crate) fn bool(&self, key: &str, default: bool) -> Result<bool> {
        match self.get(key).map(str::trim) {
            None => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(Error::Config(format!("{key}={v:?} is not true or false"))),
        }
    }
}

impl<K: Into<String>, V: ToString, const N: usize> From<[(K, V); N]> for Config {
    fn from(pairs: [(K, V); N]) -> Self {
        let mut c = Config::new();
        for (k, v) in pairs {
            c.insert(k, v);
        }
        c
    }
}

impl<K: Into<String>, V: ToString> FromIterator<(K, V)> for Config {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut c = Config::new();
        for (k, v) in iter {
            c.insert(k, v);
        }
        c
    }
}

/// What every client needs: where the cluster is and how patient to be with it.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub bootstrap_servers: Vec<String>,
    pub client_id: String,
    pub request_timeout: Duration,
    pub metadata_max_age: Duration,
    pub retry_backoff: Duration,
    pub connection_setup_timeout: Duration,
    /// Largest response frame accepted from a broker.
    pub response_bytes_max: usize,
}

impl ClientConfig {
    pub fn from_config(c: &Config, default_request_timeout_ms: u64) -> Result<Self> {
        let servers: Vec<String> = c
            .get("bootstrap.servers")
            .ok_or_else(|| Error::Config("bootstrap.servers is required".into()))?
            .split(',')
            .map(|s| s.trim().trim_start_matches("PLAINTEXT://").to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if servers.is_empty() {
            return Err(Error::Config("bootstrap.servers is empty".into()));
        }
        Ok(Self {
            bootstrap_servers: servers,
            client_id: c.string("client.id", "strand-client"),
            request_timeout: c.ms("request.timeout.ms", default_request_timeout_ms)?,
            metadata_max_age: c.ms("metadata.max.age.ms", 300_000)?,
            retry_backoff: c.ms("retry.backoff.ms", 100)?,
            connection_setup_timeout: c.ms("socket.connection.setup.timeout.ms", 10_000)?,
            response_bytes_max: c.parse("strand.response.bytes.max", 256usize << 20)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_and_defaults() {
        let c = Config::parse_properties("# comment\nbootstrap.servers = a:1, b:2\nlinger.ms=7\n")
            .unwrap();
        let cc = ClientConfig::from_config(&c, 30_000).unwrap();
        assert_eq!(cc.bootstrap_servers, vec!["a:1", "b:2"]);
        assert_eq!(cc.request_timeout, Duration::from_secs(30));
        assert_eq!(c.ms("linger.ms", 0).unwrap(), Duration::from_millis(7));
        assert!(c.set("linger.ms", "x").ms("linger.ms", 0).is_err());
        assert!(ClientConfig::from_config(&Config::new(), 1).is_err());
    }
}
