// Package rpc is Weir's internal gRPC services — weir.DataNode, weir.Coord and weir.QueryNode — written by
// hand and carried as JSON, because Weir builds without a protobuf compiler.
//
// Each service is a hand-written grpc.ServiceDesc over plain Go request and response structs,
// a server interface, a Register function and a typed client. Messages travel with the "json"
// codec this package registers with grpc-go, selected per call by the content subtype
// (application/grpc+json), so a server may still host protobuf services beside these.
//
// Wire compatibility, which rolling upgrades (invariant 7) depend on: a field is only ever
// added, never renamed, retyped or reused; a receiver ignores fields it does not know and reads
// missing ones as zero. Integers keep full precision (encoding/json writes and reads int64 and
// uint64 as exact decimal digits).
//
// Errors cross the wire as gRPC status errors. A handler chooses the code by returning a
// status error or any error with a GRPCStatus method (*apierr.Error has one), also when
// wrapped — the message is then the whole wrapped text; context errors become Canceled and
// DeadlineExceeded; any other error arrives as Unknown with its message. A panicking handler
// returns Internal and the server keeps serving.
package rpc
