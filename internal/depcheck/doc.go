// Package depcheck holds the test of the brief's dependency rules: the write and read paths
// never import the coordinator, and the storage packages know no Weir types. It has no code.
package depcheck
