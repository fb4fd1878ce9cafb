package bench

import (
	"context"
	"errors"
)

// Ingest is not written yet.
func Ingest(ctx context.Context, o Options) (*Report, error) { return nil, errors.New("not yet") }
