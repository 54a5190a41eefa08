//! One connection type for a Redis server and a Redis Cluster.

use redis::{
    Cmd, Pipeline, RedisFuture, RedisResult, Value,
    aio::{ConnectionLike, ConnectionManager},
    cluster_async::ClusterConnection,
    cluster_routing::{RoutingInfo, SingleNodeRoutingInfo},
};

/// A multiplexed connection to a server, or to every node of a cluster.
/// Cheap to clone; clones share the connection.
#[derive(Clone)]
pub(super) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(&'a mut self, pipeline: &'a Pipeline, offset: usize, count: usize) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// A node to send a keyspace-wide command (`SCAN`) to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Node {
    /// The one server.
    Single,
    /// A cluster master.
    Master { host: String, port: u16 },
}

impl Conn {
    /// The nodes that together hold every key: the server, or each master.
    pub(super) async fn masters(&mut self) -> RedisResult<Vec<Node>> {
        match self {
            Conn::Single(_) => Ok(vec![Node::Single]),
            Conn::Cluster(c) => {
                // CLUSTER SLOTS: [[start, end, [host, port, id, ...], replicas...], ...]
                let slots: Vec<Vec<Value>> = redis::cmd("CLUSTER").arg("SLOTS").query_async(c).await?;
                let mut nodes = Vec::new();
                for range in slots {
                    let Some(Value::Array(master)) = range.get(2) else { continue };
                    let (Some(host), Some(port)) = (master.first(), master.get(1)) else {
                        continue;
                    };
                    let host: String = redis::from_redis_value_ref(host)?;
                    let port: u16 = redis::from_redis_value_ref(port)?;
                    let node = Node::Master { host, port };
                    if !nodes.contains(&node) {
                        nodes.push(node);
                    }
                }
                Ok(nodes)
            }
        }
    }

    /// Sends `cmd` to `node`.
    pub(super) async fn query_node<T: redis::FromRedisValue>(&mut self, node: &Node, cmd: &Cmd) -> RedisResult<T> {
        match (self, node) {
            (Conn::Cluster(c), Node::Master { host, port }) => {
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                    host: host.clone(),
                    port: *port,
                });
                let value = c.route_command(cmd.clone(), routing).await?;
                Ok(redis::from_redis_value(value)?)
            }
            (conn, _) => cmd.query_async(conn).await,
        }
    }
}
