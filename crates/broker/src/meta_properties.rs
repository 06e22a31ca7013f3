//! `meta.properties` in each log dir: the cluster id and node id the data belongs to, in
//! Kafka's format. A log dir written by another node or cluster is refused at start.

use std::collections::BTreeMap;
use std::path::PathBuf;

const FILE: &str = "meta.properties";

/// Returns the cluster id, creating `meta.properties` in every log dir that lacks it.
pub fn ensure(dirs: &[PathBuf], node_id: i32) -> Result<String, String> {
    let mut cluster_id: Option<String> = None;
    for dir in dirs {
        let path = dir.join(FILE);
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let props: BTreeMap<&str, &str> = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim(), v.trim()))
            .collect();
        if let Some(n) = props.get("node.id") {
            if *n != node_id.to_string() {
                return Err(format!(
                    "{} belongs to node.id {n}, but this broker is node.id {node_id}",
                    path.display()
                ));
            }
        }
        if let Some(c) = props.get("cluster.id") {
            match &cluster_id {
                Some(existing) if existing != c => {
                    return Err(format!(
                        "{} belongs to cluster {c}, other log dirs to {existing}",
                        path.display()
                    ));
                }
                _ => cluster_id = Some((*c).to_string()),
            }
        }
    }
    let cluster_id = cluster_id.unwrap_or_else(|| base64url(uuid::Uuid::new_v4().as_bytes()));
    for dir in dirs {
        let path = dir.join(FILE);
        if !path.exists() {
            let text = format!(
                "#Written by strand\nversion=1\nnode.id={node_id}\ncluster.id={cluster_id}\n"
            );
            std::fs::write(&path, text)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
    }
    Ok(cluster_id)
}

/// Base64 (URL alphabet, no padding), as Kafka prints cluster ids.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_known_values() {
        assert_eq!(base64url(b"Man"), "TWFu");
        assert_eq!(base64url(b"Ma"), "TWE");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
        assert_eq!(base64url(&[0u8; 16]).len(), 22);
    }

    #[test]
    fn cluster_id_is_kept_and_node_checked() {
        let d = tempfile::tempdir().unwrap();
        let dirs = vec![d.path().to_owned()];
        let id = ensure(&dirs, 1).unwrap();
        assert_eq!(ensure(&dirs, 1).unwrap(), id);
        assert!(ensure(&dirs, 2).is_err());
    }
}
