package vindex

// Defaults of search parameters a request leaves out.
const (
	DefaultEf      = 16
	DefaultNprobe  = 8
	DefaultRefineK = 4
)
