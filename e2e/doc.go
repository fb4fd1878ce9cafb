// Package e2e holds tests that run Weir as a user does: the `weir` binary built from this
// checkout, started as its own process, reached only through its public ports.
package e2e
