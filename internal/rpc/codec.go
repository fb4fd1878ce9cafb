package rpc

import (
	"encoding/json"

	"google.golang.org/grpc/encoding"
)

// CodecName is the name of the JSON codec, and the gRPC content subtype its messages carry.
const CodecName = "json"

// jsonCodec marshals messages with encoding/json. Unmarshal ignores unknown fields, which is
// what lets an older process read a newer one's messages.
type jsonCodec struct{}

var _ encoding.Codec = jsonCodec{}

func (jsonCodec) Marshal(v any) ([]byte, error)      { return json.Marshal(v) }
func (jsonCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }
func (jsonCodec) Name() string                       { return CodecName }

// grpc-go looks codecs up by content subtype in a registry that must be filled at init time.
func init() { encoding.RegisterCodec(jsonCodec{}) }
