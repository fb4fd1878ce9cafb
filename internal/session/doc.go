// Package session registers each Weir process (coord, data node, proxy) in etcd under a lease
// that the process keeps alive, so that others learn which processes run by reading keys.
//
// A session is the key {root}/sessions/{role}/{nodeID} holding the process's Info as JSON,
// attached to an etcd lease of TTL seconds. The package guarantees:
//
//   - At most one live session per role and node ID. Register writes the key in one transaction
//     whose predicate is "the key does not exist", with the put bound to the new lease, so two
//     processes given the same --node-id cannot both register; the second gets ErrDuplicate.
//   - A crashed process's session disappears within its TTL (etcd expires the lease), and a
//     closed one at once (Close revokes the lease). A restarted process with the same node ID
//     waits for its previous session to expire instead of failing (see Register).
//   - Done closes no later than etcd can expire the lease: the session's own deadline is the send
//     time of the last answered keep-alive plus the TTL etcd granted, and etcd renewed the lease
//     after that send. So by the time anyone can read the session as gone, its process knows it
//     lost it (give or take the scheduling of one goroutine).
//
// The coordinator learns joins and deaths with List, by periodic reads, never with an etcd
// Watch (the MEP rules Watch out). Info.CreateRevision, the revision that created the key,
// changes when a process restarts, so two reads that both show a node alive still reveal that
// it restarted in between and lost whatever it held in memory.
package session
