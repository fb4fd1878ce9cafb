package bench

import (
	"context"
	"errors"
)

// Reload is not written yet.
func Reload(ctx context.Context, o Options) (*Report, error) { return nil, errors.New("not yet") }
