package bench

import (
	"context"
	"errors"
)

// Meta is not written yet.
func Meta(ctx context.Context, o Options) (*Report, error) { return nil, errors.New("not yet") }
