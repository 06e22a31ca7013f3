//! Named listeners, as Kafka configures them: `listeners` (`NAME://host:port,...`),
//! `advertised.listeners` (what clients are told, per name), `listener.security.protocol.map`
//! (`NAME:PROTOCOL,...`), `inter.broker.listener.name` and `controller.listener.names`.
//!
//! A listener named after a security protocol (`PLAINTEXT`, `SSL`, ...) needs no map entry.
//! Only PLAINTEXT is served so far; a listener of another protocol is refused at start with a
//! clear error. Listeners named in `controller.listener.names` are the controller's: they are
//! parsed and checked (so Kafka's combined-mode `server.properties` starts as it is) but not
//! served to clients; a node is its own single-voter quorum until the quorum replicates, and
//! their controller RPCs are not served yet.

use std::net::SocketAddr;

use crate::config::ConfigError;

/// One listener a broker serves clients on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    pub protocol: String,
    /// Where it binds (port 0: chosen when bound).
    pub bind: SocketAddr,
    /// What clients connecting to it are told (Metadata, FindCoordinator, DescribeCluster).
    pub advertised_host: String,
    pub advertised_port: u16,
}

const PROTOCOLS: &[&str] = &["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"];

fn invalid(key: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        value: value.into(),
        reason: reason.into(),
    }
}

/// `NAME://host:port` entries of a comma-separated list.
fn entries(key: &str, value: &str) -> Result<Vec<(String, String, u16)>, ConfigError> {
    let mut out: Vec<(String, String, u16)> = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, addr) = item
            .split_once("://")
            .ok_or_else(|| invalid(key, value, format!("{item}: expected NAME://host:port")))?;
        let name = name.trim().to_ascii_uppercase();
        if name.is_empty() {
            return Err(invalid(key, value, format!("{item}: no listener name")));
        }
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| invalid(key, value, format!("{item}: missing port")))?;
        let port: u16 = port
            .parse()
            .map_err(|_| invalid(key, value, format!("{item}: bad port")))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        if out.iter().any(|(n, _, _)| *n == name) {
            return Err(invalid(
                key,
                value,
                format!("listener name {name} is repeated"),
            ));
        }
        out.push((name, host, port));
    }
    Ok(out)
}

/// The listeners of a node: those it serves clients on, and the controller's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listeners {
    pub client: Vec<Listener>,
    pub controller: Vec<Listener>,
    /// `inter.broker.listener.name`
    pub inter_broker: String,
}

/// Parses the listener settings.
pub fn parse(
    listeners: &str,
    advertised: &str,
    protocol_map: &str,
    inter_broker: &str,
    controller_names: &str,
) -> Result<Listeners, ConfigError> {
    let bound = entries("listeners", listeners)?;
    if bound.is_empty() {
        return Err(invalid(
            "listeners",
            listeners,
            "at least one listener is needed",
        ));
    }
    let mut map: Vec<(String, String)> = Vec::new();
    for pair in protocol_map
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let (name, proto) = pair.split_once(':').ok_or_else(|| {
            invalid(
                "listener.security.protocol.map",
                protocol_map,
                format!("{pair}: expected NAME:PROTOCOL"),
            )
        })?;
        let proto = proto.trim().to_ascii_uppercase();
        if !PROTOCOLS.contains(&proto.as_str()) {
            return Err(invalid(
                "listener.security.protocol.map",
                protocol_map,
                format!("{proto} is not a security protocol"),
            ));
        }
        map.push((name.trim().to_ascii_uppercase(), proto));
    }
    let controllers: Vec<String> = controller_names
        .split(',')
        .map(|s| s.trim().to_ascii_uppercase())
        .filter(|s| !s.is_empty())
        .collect();
    if let Some(c) = controllers
        .iter()
        .find(|c| !bound.iter().any(|(n, _, _)| n == *c))
    {
        return Err(invalid(
            "controller.listener.names",
            controller_names,
            format!("{c} is not among the listeners"),
        ));
    }
    let advertised = entries("advertised.listeners", advertised)?;
    let mut out = Vec::with_capacity(bound.len());
    for (name, host, port) in bound {
        let protocol = map
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, p)| p.clone())
            .or_else(|| PROTOCOLS.contains(&name.as_str()).then(|| name.clone()))
            .ok_or_else(|| {
                invalid(
                    "listener.security.protocol.map",
                    protocol_map,
                    format!("no security protocol defined for listener {name}"),
                )
            })?;
        if protocol != "PLAINTEXT" {
            return Err(invalid(
                "listeners",
                listeners,
                format!("listener {name} uses {protocol}; only PLAINTEXT is served so far"),
            ));
        }
        let host = if host.is_empty() || host == "localhost" {
            "127.0.0.1".to_string()
        } else {
            host
        };
        let ip: std::net::IpAddr = host.parse().map_err(|_| {
            invalid(
                "listeners",
                listeners,
                format!("{name}: the host must be an IP address or localhost"),
            )
        })?;
        if out
            .iter()
            .any(|l: &Listener| l.bind.port() == port && port != 0)
        {
            return Err(invalid(
                "listeners",
                listeners,
                format!("port {port} is used by two listeners"),
            ));
        }
        let (advertised_host, advertised_port) = advertised
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, h, p)| {
                (
                    if h.is_empty() {
                        host.clone()
                    } else {
                        h.clone()
                    },
                    *p,
                )
            })
            .unwrap_or((host.clone(), port));
        out.push(Listener {
            name,
            protocol,
            bind: SocketAddr::new(ip, port),
            advertised_host,
            advertised_port,
        });
    }
    if let Some((name, _, _)) = advertised
        .iter()
        .find(|(n, _, _)| !out.iter().any(|l| l.name == *n))
    {
        return Err(invalid(
            "advertised.listeners",
            &advertised_text(advertised.as_slice()),
            format!("{name} is not among the listeners"),
        ));
    }
    let (controller, client): (Vec<Listener>, Vec<Listener>) =
        out.into_iter().partition(|l| controllers.contains(&l.name));
    if client.is_empty() {
        return Err(invalid(
            "listeners",
            listeners,
            "every listener is a controller listener; a Strand node serves clients too",
        ));
    }
    let inter = inter_broker.trim().to_ascii_uppercase();
    let inter = if inter.is_empty() {
        // Kafka's default: the listener of security.inter.broker.protocol (PLAINTEXT).
        client
            .iter()
            .find(|l| l.protocol == "PLAINTEXT")
            .map(|l| l.name.clone())
            .unwrap_or_else(|| client[0].name.clone())
    } else if client.iter().any(|l| l.name == inter) {
        inter
    } else {
        return Err(invalid(
            "inter.broker.listener.name",
            inter_broker,
            format!("{inter} is not among the client listeners"),
        ));
    };
    Ok(Listeners {
        client,
        controller,
        inter_broker: inter,
    })
}

fn advertised_text(entries: &[(String, String, u16)]) -> String {
    entries
        .iter()
        .map(|(n, h, p)| format!("{n}://{h}:{p}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_listeners_with_their_own_advertised_endpoints() {
        let Listeners {
            client: ls,
            inter_broker: inter,
            ..
        } = parse(
            "PLAINTEXT://127.0.0.1:9092,INTERNAL://127.0.0.2:9094",
            "PLAINTEXT://kafka.example:19092",
            "INTERNAL:PLAINTEXT",
            "INTERNAL",
            "",
        )
        .unwrap();
        assert_eq!(inter, "INTERNAL");
        assert_eq!(ls.len(), 2);
        assert_eq!(
            (ls[0].advertised_host.as_str(), ls[0].advertised_port),
            ("kafka.example", 19092)
        );
        assert_eq!(ls[1].bind.to_string(), "127.0.0.2:9094");
        assert_eq!(
            (ls[1].advertised_host.as_str(), ls[1].advertised_port),
            ("127.0.0.2", 9094)
        );
        // The default inter-broker listener is the PLAINTEXT one.
        let l = parse("EXTERNAL://:9092", "", "EXTERNAL:PLAINTEXT", "", "").unwrap();
        assert_eq!(l.inter_broker, "EXTERNAL");
        // Kafka's combined-mode listeners: the controller's is set apart.
        let l = parse(
            "PLAINTEXT://:9092,CONTROLLER://:9093",
            "PLAINTEXT://localhost:9092,CONTROLLER://localhost:9093",
            "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "PLAINTEXT",
            "CONTROLLER",
        )
        .unwrap();
        assert_eq!(
            (l.client.len(), l.controller[0].name.as_str()),
            (1, "CONTROLLER")
        );
    }

    #[test]
    fn bad_listener_settings_say_what_is_wrong() {
        let err = |l: &str, a: &str, m: &str, i: &str, c: &str| {
            parse(l, a, m, i, c).unwrap_err().to_string()
        };
        assert!(err("CLIENT://:9092", "", "", "", "").contains("no security protocol"));
        assert!(err("SSL://:9093", "", "", "", "").contains("only PLAINTEXT"));
        assert!(err("A://:1,A://:2", "", "A:PLAINTEXT", "", "").contains("repeated"));
        assert!(err("A://:1,B://:1", "", "A:PLAINTEXT,B:PLAINTEXT", "", "").contains("port 1"));
        assert!(err("PLAINTEXT://:1", "OTHER://h:2", "", "", "").contains("not among"));
        assert!(err("PLAINTEXT://:1", "", "", "NOPE", "").contains("not among"));
        assert!(err("PLAINTEXT://:1", "", "", "", "CONTROLLER").contains("not among"));
        assert!(err("C://:1", "", "C:PLAINTEXT", "", "C").contains("serves clients too"));
        assert!(err("PLAINTEXT://example.com:1", "", "", "", "").contains("IP address"));
        assert!(err("", "", "", "", "").contains("at least one"));
    }
}
