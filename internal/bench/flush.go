package bench

import (
	"context"
	"errors"
)

// Flush is not written yet.
func Flush(ctx context.Context, o Options) (*Report, error) { return nil, errors.New("not yet") }
