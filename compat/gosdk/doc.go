// Package gosdk holds compatibility tests that drive a running Weir server through the official Milvus Go SDK, exactly as a user's program would.
package gosdk
