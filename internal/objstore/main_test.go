package objstore

import (
	"testing"

	"go.uber.org/goleak"
)

// Every S3 under test is closed and every fake server shut down, so no
// goroutine may outlive the tests.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
