package lebin

import (
	"testing"

	"pgregory.net/rapid"
)

// TestRoundTripAndShortReads: what is appended reads back; reading past the end is ErrShort,
// never a panic, and every later read returns nothing.
func TestRoundTripAndShortReads(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		us := rapid.SliceOf(rapid.Uint32()).Draw(t, "u32s")
		fs := rapid.SliceOf(rapid.Float32()).Draw(t, "f32s")
		b := AppendF32s(AppendU32s(nil, us), fs)
		r := &Reader{B: b}
		gotU, gotF := r.U32s(len(us)), r.F32s(len(fs))
		if r.Err != nil || len(r.B) != 0 || len(gotU) != len(us) || len(gotF) != len(fs) {
			t.Fatalf("round trip: %v, %d left", r.Err, len(r.B))
		}
		for i := range us {
			if gotU[i] != us[i] {
				t.Fatalf("u32 %d", i)
			}
		}
		for i := range fs {
			if gotF[i] != fs[i] && fs[i] == fs[i] {
				t.Fatalf("f32 %d", i)
			}
		}
		cut := rapid.IntRange(0, len(b)).Draw(t, "cut")
		r = &Reader{B: b[:cut]}
		r.U32s(len(us))
		r.F32s(len(fs))
		r.U64()
		if r.Err == nil {
			t.Fatalf("read %d+ bytes from %d", len(b)+8, cut)
		}
		if r.Take(0) != nil || r.U32() != 0 {
			t.Fatal("a read after the end returned something")
		}
	})
}
