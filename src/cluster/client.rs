//! The node's handle on the cluster: its Redis connection (one
//! `ConnectionManager`, reconnecting by itself), what it writes for itself
//! (its record, its calls' owner keys) and what it reads of the others.
//!
//! Every Redis command runs under `REDIS_TIMEOUT`: a dead or hung Redis
//! costs an API request half a second at most, and never a call.

use super::error::ClusterError;
use super::health::{ClusterStats, Transition};
use super::keys::{self, EntryRecord, NodeRecord};
use crate::config::ClusterConfig;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Mutex;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// This node in the cluster. Cheap to share behind an `Arc`.
pub struct Cluster {
    /// This node's record, as the others read it.
    pub me: NodeRecord,
    client: redis::Client,
    conn: ConnectionManager,
    pub(super) http: reqwest::Client,
    pub stats: Arc<ClusterStats>,
    /// The nodes seen alive at the last beat (callDomains), so that a
    /// callDomain check needs no Redis round trip.
    known: RwLock<BTreeSet<String>>,
    /// Entry records in Redis this node could not read (id, text): each
    /// is logged once.
    unreadable: Mutex<HashSet<(String, String)>>,
}

/// What `Cluster::entries` read.
#[derive(Debug, Default)]
pub struct EntriesRead {
    /// The entries' version (None: never set).
    pub version: Option<u64>,
    /// The id of the entries' current epoch (None: Redis has none).
    pub epoch: Option<String>,
    /// The records that parse.
    pub records: Vec<EntryRecord>,
    /// Ids of the records that do not (left out of `records`).
    pub unreadable: Vec<String>,
}

impl Cluster {
    /// Prepares the connection without waiting for Redis: a node starts,
    /// and takes calls with its cached entries, while Redis is down.
    pub fn new(
        config: &ClusterConfig,
        call_domain: &str,
        started_at: u64,
    ) -> Result<Cluster, ClusterError> {
        let client = redis::Client::open(config.redis_url.as_str())
            .map_err(|e| ClusterError::Url(e.to_string()))?;
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(keys::REDIS_TIMEOUT))
            .set_response_timeout(Some(keys::REDIS_TIMEOUT))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), manager)
            .map_err(|e| ClusterError::Url(e.to_string()))?;
        let http = reqwest::Client::builder()
            .timeout(keys::FORWARD_TIMEOUT)
            .connect_timeout(keys::FORWARD_CONNECT_TIMEOUT)
            .build()
            .map_err(|e| ClusterError::Url(format!("HTTP client: {e}")))?;
        let me = NodeRecord {
            call_domain: call_domain.to_string(),
            api: config.advertise_api.trim_end_matches('/').to_string(),
            started_at,
        };
        Ok(Cluster {
            known: RwLock::new(BTreeSet::from([me.call_domain.clone()])),
            me,
            client,
            conn,
            http,
            stats: Arc::default(),
            unreadable: Mutex::default(),
        })
    }

    /// The client, for the change-notice subscription.
    pub(super) fn client(&self) -> &redis::Client {
        &self.client
    }

    /// Runs one command or pipeline under the timeout, and records whether
    /// Redis answered (the log hears of a change once).
    async fn run<T: redis::FromRedisValue>(
        &self,
        what: impl FnOnce(
            ConnectionManager,
        ) -> futures_util::future::BoxFuture<'static, redis::RedisResult<T>>,
    ) -> Result<T, ClusterError> {
        let result = match tokio::time::timeout(keys::REDIS_TIMEOUT, what(self.conn.clone())).await
        {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(ClusterError::from(e)),
            Err(_) => Err(ClusterError::Redis(format!(
                "no answer within {} ms",
                keys::REDIS_TIMEOUT.as_millis()
            ))),
        };
        match (self.stats.observe(result.is_ok()), &result) {
            (Some(Transition::Up), _) => tracing::info!("cluster: redis reachable"),
            (Some(Transition::Down), Err(e)) => {
                tracing::warn!(error = %e, "cluster: redis unreachable; calls go on, forwards and provisioning wait for it")
            }
            _ => {}
        }
        result
    }

    /// One heartbeat: this node's record and last-beat time, the owner
    /// keys of `calls` (written whole each round, so that a Redis that lost
    /// its data is refilled at the next beat), and the owner keys of
    /// `ended` deleted. Returns the nodes alive now.
    pub async fn beat(
        &self,
        calls: &[String],
        ended: &[String],
        now_ms: u64,
    ) -> Result<Vec<String>, ClusterError> {
        let mut pipe = redis::pipe();
        let me = &self.me.call_domain;
        pipe.cmd("SET")
            .arg(keys::node(me))
            .arg(self.me.to_json())
            .arg("PX")
            .arg(keys::NODE_TTL.as_millis() as u64)
            .ignore();
        pipe.cmd("ZADD")
            .arg(keys::nodes())
            .arg(now_ms)
            .arg(me)
            .ignore();
        let oldest = now_ms.saturating_sub(keys::NODE_TTL.as_millis() as u64);
        pipe.cmd("ZREMRANGEBYSCORE")
            .arg(keys::nodes())
            .arg("-inf")
            .arg(format!("({oldest}"))
            .ignore();
        for id in calls {
            pipe.cmd("SET")
                .arg(keys::call(id))
                .arg(me)
                .arg("PX")
                .arg(keys::CALL_TTL.as_millis() as u64)
                .ignore();
        }
        for id in ended {
            pipe.cmd("DEL").arg(keys::call(id)).ignore();
        }
        pipe.cmd("ZRANGE").arg(keys::nodes()).arg(0).arg(-1);
        let (alive,): (Vec<String>,) = self
            .run(move |mut c| Box::pin(async move { pipe.query_async(&mut c).await }))
            .await?;
        *self.known.write().unwrap_or_else(|e| e.into_inner()) = alive.iter().cloned().collect();
        Ok(alive)
    }

    /// Owner keys only: written for calls just answered, between beats.
    pub async fn own(&self, calls: &[String], ended: &[String]) -> Result<(), ClusterError> {
        if calls.is_empty() && ended.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for id in calls {
            pipe.cmd("SET")
                .arg(keys::call(id))
                .arg(&self.me.call_domain)
                .arg("PX")
                .arg(keys::CALL_TTL.as_millis() as u64)
                .ignore();
        }
        for id in ended {
            pipe.cmd("DEL").arg(keys::call(id)).ignore();
        }
        self.run(move |mut c| Box::pin(async move { pipe.query_async::<()>(&mut c).await }))
            .await
    }

    /// Whether `call_domain` names a node of the cluster: this one, one
    /// seen alive at the last beat, or (asked of Redis) one that joined
    /// since.
    pub async fn is_member(&self, call_domain: &str) -> Result<bool, ClusterError> {
        if self
            .known
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(call_domain)
        {
            return Ok(true);
        }
        Ok(self.node(call_domain).await?.is_some())
    }

    /// A node's record, if it is alive.
    pub async fn node(&self, call_domain: &str) -> Result<Option<NodeRecord>, ClusterError> {
        let key = keys::node(call_domain);
        let k = key.clone();
        let text: Option<String> = self
            .run(move |mut c| {
                Box::pin(async move { redis::cmd("GET").arg(k).query_async(&mut c).await })
            })
            .await?;
        text.map(|t| {
            NodeRecord::from_json(&t).map_err(|e| ClusterError::BadRecord {
                key,
                reason: e.to_string(),
            })
        })
        .transpose()
    }

    /// Every node alive now (this one included), by callDomain.
    pub async fn nodes(&self) -> Result<Vec<NodeRecord>, ClusterError> {
        let ids: Vec<String> = self
            .run(|mut c| {
                Box::pin(async move {
                    redis::cmd("ZRANGE")
                        .arg(keys::nodes())
                        .arg(0)
                        .arg(-1)
                        .query_async(&mut c)
                        .await
                })
            })
            .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys_: Vec<String> = ids.iter().map(|id| keys::node(id)).collect();
        let texts: Vec<Option<String>> = self
            .run(move |mut c| {
                Box::pin(async move { redis::cmd("MGET").arg(keys_).query_async(&mut c).await })
            })
            .await?;
        // A node in the set whose record expired is gone: left out.
        Ok(texts
            .into_iter()
            .flatten()
            .filter_map(|t| NodeRecord::from_json(&t).ok())
            .collect())
    }

    /// The callDomain of the node owning `call_id`, if any node does.
    pub async fn owner_of(&self, call_id: &str) -> Result<Option<String>, ClusterError> {
        let key = keys::call(call_id);
        self.run(move |mut c| {
            Box::pin(async move { redis::cmd("GET").arg(key).query_async(&mut c).await })
        })
        .await
    }

    /// The provisioned entries with their version and epoch (None: Redis
    /// holds none — new, or restarted without its data). A record that
    /// does not parse (damaged, or written by a newer node with fields
    /// this one does not know) is left out and named in `unreadable`:
    /// one bad record must not stop the others from syncing.
    pub async fn entries(&self) -> Result<EntriesRead, ClusterError> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("GET")
            .arg(keys::entries_version())
            .cmd("GET")
            .arg(keys::entries_epoch())
            .cmd("HGETALL")
            .arg(keys::entries());
        let (version, epoch, all): (Option<u64>, Option<String>, HashMap<String, String>) = self
            .run(move |mut c| Box::pin(async move { pipe.query_async(&mut c).await }))
            .await?;
        let (records, bad) = keys::parse_entries(all);
        let read = EntriesRead {
            version,
            epoch,
            records,
            unreadable: bad.iter().map(|(id, _, _)| id.clone()).collect(),
        };
        self.log_unreadable(bad);
        Ok(read)
    }

    /// Warns of each unreadable record once (per id and content), not at
    /// every poll; forgets the ones that became readable or went away.
    fn log_unreadable(&self, bad: Vec<(String, String, String)>) {
        let mut seen = self.unreadable.lock().unwrap_or_else(|e| e.into_inner());
        let mut now = HashSet::with_capacity(bad.len());
        for (id, text, reason) in bad {
            let key = (id, text);
            if !seen.contains(&key) {
                tracing::warn!(entry = %key.0, %reason, "cluster: provisioned entry in redis unreadable by this node; skipped, this node's copy of it (if any) stays");
            }
            now.insert(key);
        }
        *seen = now;
    }

    /// The entries' version and epoch alone (the cheap poll).
    pub async fn entries_state(&self) -> Result<(Option<u64>, Option<String>), ClusterError> {
        self.run(|mut c| {
            Box::pin(async move {
                redis::cmd("MGET")
                    .arg(keys::entries_version())
                    .arg(keys::entries_epoch())
                    .query_async(&mut c)
                    .await
            })
        })
        .await
    }

    /// Starts an epoch of the entries if Redis has none (it is new, or lost
    /// its data): `proposed` wins unless another node's got there first.
    /// The version is set to 0 with it, so that polls have a value to
    /// compare. Returns the epoch in force.
    pub async fn claim_epoch(&self, proposed: &str) -> Result<String, ClusterError> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("SET")
            .arg(keys::entries_epoch())
            .arg(proposed)
            .arg("NX")
            .ignore()
            .cmd("SET")
            .arg(keys::entries_version())
            .arg(0)
            .arg("NX")
            .ignore()
            .cmd("GET")
            .arg(keys::entries_epoch());
        let (epoch,): (String,) = self
            .run(move |mut c| Box::pin(async move { pipe.query_async(&mut c).await }))
            .await?;
        Ok(epoch)
    }

    /// Stores (or replaces) an entry, raises the version and tells every
    /// node. Returns the new version.
    pub async fn put_entry(&self, record: &EntryRecord) -> Result<u64, ClusterError> {
        let text = record.to_json().map_err(|e| ClusterError::BadRecord {
            key: keys::entries(),
            reason: e.to_string(),
        })?;
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("HSET")
            .arg(keys::entries())
            .arg(&record.id)
            .arg(text)
            .ignore();
        self.changed(pipe).await
    }

    /// Deletes an entry, raises the version and tells every node.
    pub async fn delete_entry(&self, id: &str) -> Result<u64, ClusterError> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("HDEL")
            .arg(keys::entries())
            .arg(id)
            .ignore();
        self.changed(pipe).await
    }

    /// Adds the entries of `records` that Redis lacks (an entry already
    /// there is left as it is) and, only if any was added, raises the
    /// version and tells every node. Returns how many were added.
    pub async fn merge_entries(&self, records: &[EntryRecord]) -> Result<usize, ClusterError> {
        if records.is_empty() {
            return Ok(0);
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        for r in records {
            let text = r.to_json().map_err(|e| ClusterError::BadRecord {
                key: keys::entries(),
                reason: e.to_string(),
            })?;
            pipe.cmd("HSETNX").arg(keys::entries()).arg(&r.id).arg(text);
        }
        let added: Vec<u64> = self
            .run(move |mut c| Box::pin(async move { pipe.query_async(&mut c).await }))
            .await?;
        let added = added.into_iter().filter(|n| *n == 1).count();
        if added > 0 {
            let mut pipe = redis::pipe();
            pipe.atomic();
            self.changed(pipe).await?;
        }
        Ok(added)
    }

    /// Ends an entry-changing transaction: version up, notice out.
    async fn changed(&self, mut pipe: redis::Pipeline) -> Result<u64, ClusterError> {
        pipe.cmd("INCR").arg(keys::entries_version());
        let (version,): (u64,) = self
            .run(move |mut c| Box::pin(async move { pipe.query_async(&mut c).await }))
            .await?;
        // The notice only speeds other nodes up (they poll the version
        // anyway): its failure is no failure of the change.
        let _: Result<u64, _> = self
            .run(move |mut c| {
                Box::pin(async move {
                    redis::cmd("PUBLISH")
                        .arg(keys::entries_channel())
                        .arg(version)
                        .query_async(&mut c)
                        .await
                })
            })
            .await;
        Ok(version)
    }
}
