// Package proxy serves the Milvus MilvusService gRPC API: it validates requests, answers DDL
// and describe calls from the catalog, appends inserts, deletes and flush markers to the DML
// channels, and answers flush state and statistics from the segment meta data nodes commit.
// It never calls the coordinator: the catalog's conditional transactions keep concurrent
// proxies consistent, and the channels order the writes.
//
// What the write path guarantees, and how:
//
//   - Nothing partial from a rejected request (BRIEF invariant 8). Every row is validated
//     (package batch) and every message encoded before the first append, so a request that is
//     refused — wrong dimension, missing field, over-long string, oversize batch, a row larger
//     than a message — appends nothing, writes no meta and allocates no IDs. Rejections answer
//     gRPC OK with the Milvus status code in the response (package apierr), as Milvus does.
//
//   - Acknowledged means appended. Insert, Upsert and Delete answer success only after every
//     channel the request touched acknowledged its Append, durably per the WAL's sync
//     setting. Each row goes to the channel its primary key hashes to (Milvus's hash), so every
//     write of one key lands on one channel, in order (in a collection with a partition key, the
//     partition its key value hashes to only chooses the message's partition within that
//     channel's one Append); all messages of a request carry one
//     hybrid timestamp (an upsert: its delete one timestamp, its rows a later one, in one
//     Append, so the delete orders first by position and by timestamp).
//
//   - Retries store once. Every record carries an ID unique to this process, request, channel
//     and message (a random per-process part, so a restarted proxy never reuses one). An
//     Append whose outcome is unknown is retried with the same IDs, which JetStream's
//     duplicate window stores once; after Config.AppendAttempts the request fails as
//     retriable Unavailable, and may then have been applied on some channels (a client retry
//     is a new request, as in Milvus).
//
//   - Flush without a coordinator. Flush appends a marker to every channel of the collection
//     and records the markers' positions (meta.FlushMarkers). A data node seals at a marker and
//     moves the channel checkpoint past it only when everything before it is committed, so
//     GetFlushState is true exactly when every checkpoint has reached its marker.
package proxy
