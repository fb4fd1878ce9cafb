package expr

import (
	"cmp"
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/bits-and-blooms/bitset"
)

// Eval returns the rows of rec that n matches. rec holds the columns of the fields n reads, by
// name, as package batch builds them; other columns are ignored.
func Eval(n Node, rec arrow.RecordBatch) (*bitset.BitSet, error) {
	r, err := eval(n, rec)
	if err != nil {
		return nil, err
	}
	return r.val, nil
}

// truth is a three-valued result per row: val is set where the row is true, known where it is
// true or false (unset: unknown, from a null). val is always within known.
type truth struct {
	val, known *bitset.BitSet
}

func eval(n Node, rec arrow.RecordBatch) (truth, error) {
	rows := uint(rec.NumRows())
	switch n := n.(type) {
	case And:
		a, err := eval(n.L, rec)
		if err != nil {
			return truth{}, err
		}
		b, err := eval(n.R, rec)
		if err != nil {
			return truth{}, err
		}
		// False when either is known false; true when both are true.
		falseA := a.known.Difference(a.val)
		falseB := b.known.Difference(b.val)
		known := a.known.Intersection(b.known).Union(falseA).Union(falseB)
		return truth{val: a.val.Intersection(b.val), known: known}, nil
	case Or:
		a, err := eval(n.L, rec)
		if err != nil {
			return truth{}, err
		}
		b, err := eval(n.R, rec)
		if err != nil {
			return truth{}, err
		}
		// True when either is true; false when both are known false.
		known := a.known.Intersection(b.known).Union(a.val).Union(b.val)
		return truth{val: a.val.Union(b.val), known: known}, nil
	case Not:
		x, err := eval(n.X, rec)
		if err != nil {
			return truth{}, err
		}
		return truth{val: x.known.Difference(x.val), known: x.known}, nil
	case IsNull:
		col, err := column(rec, n.Field)
		if err != nil {
			return truth{}, err
		}
		val := bitset.New(rows)
		for i := range int(rows) {
			if col.IsNull(i) != n.Not {
				val.Set(uint(i))
			}
		}
		return truth{val: val, known: all(rows)}, nil
	}
	var field Field
	switch n := n.(type) {
	case Compare:
		field = n.Field
	case In:
		field = n.Field
	case Like:
		field = n.Field
	case BoolField:
		field = n.Field
	default:
		return truth{}, fmt.Errorf("expr: unknown node %T", n)
	}
	col, err := column(rec, field)
	if err != nil {
		return truth{}, err
	}
	match, err := predicate(n, col)
	if err != nil {
		return truth{}, err
	}
	val, known := bitset.New(rows), all(rows)
	for i := range int(rows) {
		switch {
		case col.IsNull(i):
			known.Clear(uint(i))
		case match(i):
			val.Set(uint(i))
		}
	}
	return truth{val: val, known: known}, nil
}

func all(rows uint) *bitset.BitSet { return bitset.New(rows).FlipRange(0, rows) }

func column(rec arrow.RecordBatch, f Field) (arrow.Array, error) {
	idx := rec.Schema().FieldIndices(f.Name)
	if len(idx) != 1 {
		return nil, fmt.Errorf("expr: the rows have no column %s", f.Name)
	}
	return rec.Column(idx[0]), nil
}

// predicate returns the test of leaf n on the values of col (nulls aside).
func predicate(n Node, col arrow.Array) (func(i int) bool, error) {
	switch c := col.(type) {
	case *array.Boolean:
		switch n := n.(type) {
		case BoolField:
			return c.Value, nil
		case Compare:
			want := n.Value.B == (n.Op == Eq)
			return func(i int) bool { return c.Value(i) == want }, nil
		case In:
			set := map[bool]bool{}
			for _, v := range n.Values {
				set[v.B] = true
			}
			return func(i int) bool { return set[c.Value(i)] != n.Not }, nil
		}
	case *array.String:
		switch n := n.(type) {
		case Compare:
			s := n.Value.S
			return func(i int) bool { return holds(n.Op, strings.Compare(c.Value(i), s)) }, nil
		case In:
			set := map[string]bool{}
			for _, v := range n.Values {
				set[v.S] = true
			}
			return func(i int) bool { return set[c.Value(i)] != n.Not }, nil
		case Like:
			m := likeMatcher(n.Pattern)
			return func(i int) bool { return m(c.Value(i)) }, nil
		}
	case *array.Int8:
		return numeric(n, func(i int) (int64, float64) { v := c.Value(i); return int64(v), float64(v) }, true)
	case *array.Int16:
		return numeric(n, func(i int) (int64, float64) { v := c.Value(i); return int64(v), float64(v) }, true)
	case *array.Int32:
		return numeric(n, func(i int) (int64, float64) { v := c.Value(i); return int64(v), float64(v) }, true)
	case *array.Int64:
		return numeric(n, func(i int) (int64, float64) { v := c.Value(i); return v, float64(v) }, true)
	case *array.Float32:
		// Milvus casts the literal to the column's type: compare in float32.
		return numeric(float32Literals(n), func(i int) (int64, float64) { return 0, float64(c.Value(i)) }, false)
	case *array.Float64:
		return numeric(n, func(i int) (int64, float64) { return 0, c.Value(i) }, false)
	}
	return nil, fmt.Errorf("expr: %s cannot apply to a column of %s", n, col.DataType())
}

// numeric tests a number column: exactly in int64 when both the column and the literal are
// integers, else in float64.
func numeric(n Node, at func(i int) (int64, float64), integer bool) (func(i int) bool, error) {
	switch n := n.(type) {
	case Compare:
		if integer && n.Value.Kind == Int {
			lit := n.Value.I
			return func(i int) bool { v, _ := at(i); return holds(n.Op, cmp.Compare(v, lit)) }, nil
		}
		lit := asFloat(n.Value)
		return func(i int) bool { _, f := at(i); return holds(n.Op, cmpF(f, lit)) }, nil
	case In:
		ints, floats := map[int64]bool{}, map[float64]bool{}
		for _, v := range n.Values {
			if integer && v.Kind == Int {
				ints[v.I] = true
			} else {
				floats[asFloat(v)] = true
			}
		}
		return func(i int) bool {
			v, f := at(i)
			hit := integer && ints[v] || floats[f]
			return hit != n.Not
		}, nil
	}
	return nil, fmt.Errorf("expr: %s cannot apply to numbers", n)
}

// float32Literals returns n with its literals rounded to float32, for a Float column.
func float32Literals(n Node) Node {
	round := func(v Value) Value { return Value{Kind: Float, F: float64(float32(asFloat(v)))} }
	switch x := n.(type) {
	case Compare:
		x.Value = round(x.Value)
		return x
	case In:
		vs := make([]Value, len(x.Values))
		for i, v := range x.Values {
			vs[i] = round(v)
		}
		x.Values = vs
		return x
	}
	return n
}

func asFloat(v Value) float64 {
	if v.Kind == Int {
		return float64(v.I)
	}
	return v.F
}

// cmpF compares floats; a NaN compares unequal to everything (2: no operator but != holds).
func cmpF(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	case a == b:
		return 0
	}
	return 2
}

// holds reports whether op holds for a comparison result c (-1, 0, 1, or 2 for unordered).
func holds(op Op, c int) bool {
	switch op {
	case Eq:
		return c == 0
	case Ne:
		return c != 0
	case Lt:
		return c == -1
	case Le:
		return c == -1 || c == 0
	case Gt:
		return c == 1
	case Ge:
		return c == 1 || c == 0
	}
	return false
}

// likeMatcher compiles a LIKE pattern: % matches any run of characters, _ any one character,
// and \ takes the next character literally. Matching is the two-pointer wildcard algorithm,
// O(len(s)·len(pattern)) at worst, so no pattern can make it backtrack exponentially.
func likeMatcher(pattern string) func(string) bool {
	type elem struct {
		kind byte // 'l' a literal rune, '_' one rune, '%' any run
		r    rune
	}
	var p []elem
	rs := []rune(pattern)
	for i := 0; i < len(rs); i++ {
		switch r := rs[i]; {
		case r == '\\' && i+1 < len(rs):
			i++
			p = append(p, elem{kind: 'l', r: rs[i]})
		case r == '%' || r == '_':
			p = append(p, elem{kind: byte(r)})
		default:
			p = append(p, elem{kind: 'l', r: r})
		}
	}
	// Fast path: a prefix pattern ("abc%"), the common case.
	if n := len(p); n > 0 && p[n-1].kind == '%' {
		prefix, ok := []rune{}, true
		for _, e := range p[:n-1] {
			if e.kind != 'l' {
				ok = false
				break
			}
			prefix = append(prefix, e.r)
		}
		if ok {
			pre := string(prefix)
			return func(s string) bool { return strings.HasPrefix(s, pre) }
		}
	}
	return func(str string) bool {
		s := []rune(str)
		pi, si, star, mark := 0, 0, -1, 0
		for si < len(s) {
			switch {
			case pi < len(p) && (p[pi].kind == '_' || p[pi].kind == 'l' && p[pi].r == s[si]):
				pi++
				si++
			case pi < len(p) && p[pi].kind == '%':
				star, mark = pi, si
				pi++
			case star >= 0:
				pi = star + 1
				mark++
				si = mark
			default:
				return false
			}
		}
		for pi < len(p) && p[pi].kind == '%' {
			pi++
		}
		return pi == len(p)
	}
}
