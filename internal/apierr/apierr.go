// Package apierr is the one table that maps Weir's client-visible errors to Milvus status codes
// and gRPC codes.
//
// Milvus answers most rejections in-band: the RPC itself succeeds (gRPC OK) and the response's
// commonpb.Status carries the code, and every Milvus SDK reads that status. Weir does the same on
// the Milvus API so existing clients see the codes they expect (`Status`). The gRPC code in the
// table is what the same error becomes where no Milvus status can carry it: on Weir's internal
// gRPC services and for requests rejected before a handler runs (`GRPCStatus`).
package apierr

import (
	"errors"
	"fmt"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Kind is a class of client-visible error. Each Kind has exactly one row in the table.
type Kind int

// The kinds Weir reports. Codes follow Milvus's pkg/util/merr so that clients which test
// `status.code` (pymilvus, the Go SDK's merr helpers) recognise them.
const (
	Internal Kind = iota
	ServiceNotReady
	Unavailable
	Unimplemented
	CollectionNotFound
	CollectionNumLimit
	SchemaMismatch
	PartitionNotFound
	DatabaseNotFound
	ParameterInvalid
	ParameterMissing
	ParameterTooLarge
	// Unexpected is what Milvus answers for the rejections its proxy raises as plain Go errors
	// (a NaN in a float column, a malformed sparse row): code 65535, no Milvus error name.
	Unexpected
	// RateLimited is a request refused by a rate limit (Milvus's ErrServiceRateLimit).
	RateLimited
	// FieldNameInvalid is a field name Milvus's rules refuse (ErrFieldInvalidName).
	FieldNameInvalid
	// IndexNotFound is Milvus's ErrIndexNotFound; IndexDuplicate its ErrIndexDuplicate.
	IndexNotFound
	IndexDuplicate
	// IOFailed is Milvus's ErrIoFailed. Milvus's proxy reports a Geometry value that is not
	// valid WKT with it (checkGeometryFieldData wraps go-geom's error in
	// WrapErrIoFailedReason), so clients see "IO failed: <parser error>" and code 1001 for what
	// is an input error; Weir keeps the code and text and marks it as the caller's fault.
	IOFailed
	// CollectionNotLoaded is Milvus's ErrCollectionNotLoaded: a read of a collection not loaded.
	CollectionNotLoaded
	// ResourceInsufficient is Milvus's ErrServiceResourceInsufficient: more replicas than nodes.
	ResourceInsufficient
	// PartitionNotLoaded is Milvus's ErrPartitionNotLoaded: a read of a partition not loaded.
	PartitionNotLoaded
)

type row struct {
	name      string
	code      int32
	legacy    commonpb.ErrorCode
	grpc      codes.Code
	retriable bool
	input     bool // the caller's request was wrong; Milvus marks these "is_input_error"
}

// table is the single mapping. Milvus codes: pkg/util/merr/errors.go; legacy ErrorCode values:
// merr's oldCode(), which keeps pre-2.3 clients working.
var table = map[Kind]row{
	Internal:           {"internal error", 5, commonpb.ErrorCode_UnexpectedError, codes.Internal, false, false},
	ServiceNotReady:    {"service not ready", 1, commonpb.ErrorCode_NotReadyServe, codes.Unavailable, true, false},
	Unavailable:        {"service unavailable", 2, commonpb.ErrorCode_UnexpectedError, codes.Unavailable, true, false},
	Unimplemented:      {"service unimplemented", 10, commonpb.ErrorCode_UnexpectedError, codes.Unimplemented, false, false},
	CollectionNotFound: {"collection not found", 100, commonpb.ErrorCode_CollectionNotExists, codes.NotFound, false, true},
	CollectionNumLimit: {"exceeded the limit number of collections", 102, commonpb.ErrorCode_UnexpectedError, codes.ResourceExhausted, false, false},
	SchemaMismatch:     {"collection schema mismatch", 109, commonpb.ErrorCode_SchemaMismatch, codes.FailedPrecondition, false, true},
	PartitionNotFound:  {"partition not found", 200, commonpb.ErrorCode_MetaFailed, codes.NotFound, false, true},
	DatabaseNotFound:   {"database not found", 800, commonpb.ErrorCode_UnexpectedError, codes.NotFound, false, true},
	ParameterInvalid:   {"invalid parameter", 1100, commonpb.ErrorCode_IllegalArgument, codes.InvalidArgument, false, true},
	ParameterMissing:   {"missing parameter", 1101, commonpb.ErrorCode_UnexpectedError, codes.InvalidArgument, false, true},
	ParameterTooLarge:  {"parameter too large", 1102, commonpb.ErrorCode_UnexpectedError, codes.InvalidArgument, false, true},
	Unexpected:         {"unexpected error", 65535, commonpb.ErrorCode_UnexpectedError, codes.InvalidArgument, false, true},
	// Milvus marks the error retriable but wraps it, and its Status reports the top of the
	// chain: clients see Retriable false.
	RateLimited:      {"rate limit exceeded", 8, commonpb.ErrorCode_RateLimit, codes.ResourceExhausted, false, false},
	FieldNameInvalid: {"field name invalid", 1701, commonpb.ErrorCode_UnexpectedError, codes.InvalidArgument, false, true},
	IndexNotFound:    {"index not found", 700, commonpb.ErrorCode_IndexNotExist, codes.NotFound, false, true},
	IndexDuplicate:   {"index duplicates", 702, commonpb.ErrorCode_UnexpectedError, codes.InvalidArgument, false, true},
	IOFailed:         {"IO failed", 1001, commonpb.ErrorCode_UnexpectedError, codes.InvalidArgument, false, true},
	// Milvus answers both with gRPC OK and the error in the status, as every error here; the
	// gRPC code is for clients that read it from Weir's interceptors.
	CollectionNotLoaded:  {"collection not loaded", 101, commonpb.ErrorCode_UnexpectedError, codes.FailedPrecondition, false, false},
	ResourceInsufficient: {"service resource insufficient", 12, commonpb.ErrorCode_UnexpectedError, codes.ResourceExhausted, true, false},
	PartitionNotLoaded:   {"partition not loaded", 201, commonpb.ErrorCode_UnexpectedError, codes.FailedPrecondition, false, false},
}

// Error is a client-visible error: a Kind and a message saying what was wrong. The message is
// Milvus's text when the error is one Milvus has (see Milvus), followed by Weir's detail.
type Error struct {
	Kind   Kind
	Detail string
	text   string // Milvus's message, formatted; "" for errors only Weir has
	cause  error
}

// New returns an Error of kind k whose message is formatted from format and args.
// Messages name the offending thing and, where it applies, what was expected and what was got.
func New(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Detail: fmt.Sprintf(format, args...)}
}

// Wrap returns an Error of kind k that keeps err as its cause.
func Wrap(k Kind, err error, format string, args ...any) *Error {
	return &Error{Kind: k, Detail: fmt.Sprintf(format, args...), cause: err}
}

func (e *Error) Error() string {
	msg := e.text
	if msg == "" {
		msg = table[e.Kind].name
	}
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	if e.cause != nil {
		msg += ": " + e.cause.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.cause }

// Is makes errors.Is(err, &Error{Kind: k}) match any Error of kind k.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Kind == e.Kind && t.Detail == "" && t.text == "" && t.cause == nil
}

// GRPCStatus lets grpc-go turn an Error returned from a handler into the table's gRPC code.
func (e *Error) GRPCStatus() *status.Status {
	return status.New(table[e.Kind].grpc, e.Error())
}

// KindOf returns the kind of err; errors that are not an *Error are Internal.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}

// Code returns the Milvus status code of kind k.
func Code(k Kind) int32 { return table[k].code }

// GRPCCode returns the gRPC code of kind k.
func GRPCCode(k Kind) codes.Code { return table[k].grpc }

// OK is the status of a successful call.
func OK() *commonpb.Status { return &commonpb.Status{} }

// Status converts err into a Milvus status; nil becomes success.
func Status(err error) *commonpb.Status {
	if err == nil {
		return OK()
	}
	r := table[KindOf(err)]
	st := &commonpb.Status{
		ErrorCode: r.legacy,
		Reason:    err.Error(),
		Code:      r.code,
		Retriable: r.retriable,
		Detail:    err.Error(),
	}
	if r.input {
		st.ExtraInfo = map[string]string{"is_input_error": "true"}
	}
	return st
}
