//! The Redis deployments the tests start (tests/support/redis_server.rs):
//! a plain server, a TLS-only server with a CA of its own, and a three-master
//! Redis Cluster, each of which can lose a node and get it back.
//!
//! Nothing is skipped: a missing `redis-server`, `redis-cli` or `openssl`
//! FAILS these tests (CI installs them: `scripts/test.sh`).

#[path = "support/redis_server.rs"]
mod redis_server;

use redis_server::{key_slot, RedisCluster, RedisServer};

#[test]
fn a_tls_only_server_answers_over_tls_and_not_in_clear() {
    let tls = RedisServer::start_tls();
    assert!(tls.url().starts_with("rediss://127.0.0.1:"));
    let ca = std::fs::read_to_string(tls.ca_file().unwrap()).unwrap();
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
    assert_eq!(tls.cli(&["SET", "k", "v"]).unwrap(), "OK");
    assert_eq!(tls.dbsize(), 1);
    // No plain port: a clear-text PING gets no PONG.
    assert!(!tls.cmd("PING").is_ok_and(|r| r.starts_with("+PONG")));
    tls.kill();
    assert!(tls.cli(&["PING"]).is_err());
    tls.restart();
    assert_eq!(tls.dbsize(), 0, "a restart comes back empty");
}

#[test]
fn a_three_master_cluster_routes_keys_and_survives_a_node_restart() {
    let cluster = RedisCluster::start();
    assert_eq!(cluster.nodes().len(), 3);
    assert_eq!(cluster.seeds().split(',').count(), 3);
    // Our slot function agrees with the server's, hash tags included.
    for key in ["a", "{fam}:x", "{fam}:y", "poem:{f1}rt"] {
        let server = cluster.nodes()[0].cmd(&format!("CLUSTER KEYSLOT {key}")).unwrap();
        assert_eq!(server.trim(), format!(":{}", key_slot(key.as_bytes())), "{key}");
    }
    assert_eq!(key_slot(b"{fam}:x"), key_slot(b"{fam}:y"));
    // Each node accepts the keys it serves, and redirects the others.
    let owner = cluster.node_for_key("some-key");
    assert!(cluster.nodes()[owner]
        .cmd("SET some-key 1")
        .unwrap()
        .starts_with("+OK"));
    let other = (owner + 1) % 3;
    assert!(cluster.nodes()[other]
        .cmd("SET some-key 1")
        .unwrap()
        .starts_with("-MOVED"));
    assert_eq!(cluster.dbsize(), 1);

    cluster.kill_node(owner);
    assert!(!cluster.nodes()[owner].is_running());
    cluster.restart_node(owner);
    assert_eq!(cluster.node_for_key("some-key"), owner, "same slots after a restart");
    assert_eq!(cluster.dbsize(), 0);
}
