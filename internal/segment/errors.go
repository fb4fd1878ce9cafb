package segment

import "errors"

var (
	// ErrBadKey reports an object key that is not a segment file key.
	ErrBadKey = errors.New("segment: not a segment file key")
	// ErrBadRoot reports a key root that would make keys objstore rejects.
	ErrBadRoot = errors.New("segment: invalid key root")
	// ErrEmpty reports a write of no rows: a sync with nothing to write writes no file.
	ErrEmpty = errors.New("segment: no rows")
	// ErrSchema reports records or columns that do not fit the file being written or read.
	ErrSchema = errors.New("segment: schema mismatch")
	// ErrFormat reports a file that is not a segment file of the expected kind and version.
	ErrFormat = errors.New("segment: bad file")
	// ErrNoColumn reports a column name the file does not have.
	ErrNoColumn = errors.New("segment: no such column")
)
