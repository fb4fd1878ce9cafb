package bench

import (
	"context"
	"errors"
)

// Recovery is not written yet.
func Recovery(ctx context.Context, o Options) (*Report, error) { return nil, errors.New("not yet") }
