//! `meta.properties` in each log dir: the cluster id and node id the data belongs to, in
//! Kafka's format. A log dir written by another node or cluster is refused at start.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const FILE: &str = "meta.properties";

/// What a log dir's `meta.properties` says (Kafka's version 1 format, KRaft).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaProperties {
    pub cluster_id: String,
    pub node_id: i32,
    /// KIP-858: the log dir's own id.
    pub directory_id: Option<String>,
}

/// A random id in Kafka's form (a UUID, base64 URL alphabet, no padding: 22 characters), as
/// `kafka-storage random-uuid` prints.
pub fn random_uuid() -> String {
    strand_protocol::ids::random_uuid()
}

/// Reads `dir`'s `meta.properties`; `Ok(None)` if the dir is not formatted.
pub fn read(dir: &Path) -> Result<Option<MetaProperties>, String> {
    let path = dir.join(FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let props: BTreeMap<&str, &str> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    let bad = |what: &str| format!("{}: {what}", path.display());
    let cluster_id = props
        .get("cluster.id")
        .ok_or_else(|| bad("no cluster.id"))?
        .to_string();
    let node_id = props
        .get("node.id")
        .ok_or_else(|| bad("no node.id"))?
        .parse()
        .map_err(|_| bad("node.id is not a number"))?;
    Ok(Some(MetaProperties {
        cluster_id,
        node_id,
        directory_id: props.get("directory.id").map(|s| s.to_string()),
    }))
}

/// Writes `meta.properties` in `dir` (created if missing) for `cluster_id` and `node_id`, with
/// a new directory id.
pub fn write(dir: &Path, cluster_id: &str, node_id: i32) -> Result<MetaProperties, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let meta = MetaProperties {
        cluster_id: cluster_id.to_string(),
        node_id,
        directory_id: Some(random_uuid()),
    };
    let text = format!(
        "#Written by strand\nversion=1\nnode.id={node_id}\ncluster.id={cluster_id}\ndirectory.id={}\n",
        meta.directory_id.as_deref().unwrap_or_default()
    );
    let path = dir.join(FILE);
    let tmp = dir.join(format!("{FILE}.tmp"));
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(meta)
}

pub use strand_protocol::ids::uuid_of;

/// Checks a Kafka cluster id: 16 bytes in base64 URL form.
pub fn check_cluster_id(id: &str) -> Result<(), String> {
    let ok = id.len() == 22
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "cluster id {id:?} is not a UUID in base64 (22 characters); `strand storage random-uuid` makes one"
        ))
    }
}

/// Returns the cluster id the log dirs belong to, formatting those without `meta.properties`
/// (the embedded default formats itself). Dirs of another node or cluster are refused.
pub fn ensure(dirs: &[PathBuf], node_id: i32) -> Result<String, String> {
    let mut cluster_id: Option<String> = None;
    for dir in dirs {
        let Some(meta) = read(dir)? else { continue };
        if meta.node_id != node_id {
            return Err(format!(
                "{} belongs to node.id {}, but this broker is node.id {node_id}",
                dir.join(FILE).display(),
                meta.node_id
            ));
        }
        match &cluster_id {
            Some(existing) if *existing != meta.cluster_id => {
                return Err(format!(
                    "{} belongs to cluster {}, other log dirs to {existing}",
                    dir.join(FILE).display(),
                    meta.cluster_id
                ));
            }
            _ => cluster_id = Some(meta.cluster_id),
        }
    }
    let cluster_id = cluster_id.unwrap_or_else(random_uuid);
    for dir in dirs {
        if read(dir)?.is_none() {
            write(dir, &cluster_id, node_id)?;
        }
    }
    Ok(cluster_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta_dir_id(dir: &Path) -> String {
        read(dir).unwrap().unwrap().directory_id.unwrap()
    }

    #[test]
    fn cluster_id_is_kept_and_node_checked() {
        let d = tempfile::tempdir().unwrap();
        let dirs = vec![d.path().to_owned()];
        let id = ensure(&dirs, 1).unwrap();
        assert_eq!(ensure(&dirs, 1).unwrap(), id);
        assert!(ensure(&dirs, 2).is_err());
        let meta = read(d.path()).unwrap().unwrap();
        assert_eq!((meta.cluster_id.as_str(), meta.node_id), (id.as_str(), 1));
        assert_eq!(meta.directory_id.map(|d| d.len()), Some(22));
        assert!(check_cluster_id(&random_uuid()).is_ok());
        assert!(uuid_of(meta_dir_id(d.path()).as_str()).is_some());
        assert!(check_cluster_id("not-an-id").is_err());
    }
}
