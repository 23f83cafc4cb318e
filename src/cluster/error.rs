//! The cluster's one error type. Its texts reach API clients (in a 503's
//! `{"error": …}`) and the log, so each names what failed and why.

/// Why a cluster operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClusterError {
    /// Redis refused, failed or did not answer in time; the node carries on
    /// alone until it is back.
    #[error("cluster unavailable: redis: {0}")]
    Redis(String),
    /// A value in Redis does not read as what its key holds.
    #[error("cluster unavailable: redis key {key} unreadable: {reason}")]
    BadRecord { key: String, reason: String },
    /// The call's owner stopped beating: its record expired.
    #[error("owner node {node} is not registered in the cluster (stopped or unreachable)")]
    OwnerGone { node: String },
    /// The owner's API could not be reached, or did not answer in time.
    #[error("owner node {node} unreachable: {reason}")]
    OwnerUnreachable { node: String, reason: String },
    /// The `[cluster]` settings cannot be used (checked at config load;
    /// this is the client library's own word).
    #[error("config key `cluster.redis_url`: {0}")]
    Url(String),
}

impl From<redis::RedisError> for ClusterError {
    fn from(e: redis::RedisError) -> Self {
        ClusterError::Redis(e.to_string())
    }
}
