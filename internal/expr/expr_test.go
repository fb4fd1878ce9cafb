package expr

import (
	"cmp"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/weir-db/weir/internal/batch"
)

func testSchema() *schemapb.CollectionSchema {
	vc := func(name string, nullable bool) *schemapb.FieldSchema {
		return &schemapb.FieldSchema{Name: name, DataType: schemapb.DataType_VarChar, Nullable: nullable,
			TypeParams: []*commonpb.KeyValuePair{{Key: "max_length", Value: "32"}}}
	}
	fields := []*schemapb.FieldSchema{
		{Name: "id", DataType: schemapb.DataType_Int64, IsPrimaryKey: true},
		{Name: "vec", DataType: schemapb.DataType_FloatVector, TypeParams: []*commonpb.KeyValuePair{{Key: "dim", Value: "2"}}},
		{Name: "age", DataType: schemapb.DataType_Int32, Nullable: true},
		{Name: "score", DataType: schemapb.DataType_Double},
		vc("name", true),
		{Name: "ok", DataType: schemapb.DataType_Bool},
		{Name: "tags", DataType: schemapb.DataType_Array, ElementType: schemapb.DataType_Int64, Nullable: true,
			TypeParams: []*commonpb.KeyValuePair{{Key: "max_capacity", Value: "4"}}},
	}
	for i, f := range fields {
		f.FieldID = 100 + int64(i)
	}
	return &schemapb.CollectionSchema{Name: "c", Fields: fields}
}

// row is one row of the test record, nil pointers for nulls.
type row struct {
	id    int64
	age   *int32
	score float64
	name  *string
	ok    bool
}

// cleaner is what record needs of a test: testing.T and rapid.T both have it.
type cleaner interface {
	require.TestingT
	Cleanup(func())
}

func record(t cleaner, rows []row) arrow.RecordBatch {
	var ids []int64
	var ages []int32
	var scores []float64
	var names []string
	var oks []bool
	var ageValid, nameValid []bool
	for _, r := range rows {
		ids, scores, oks = append(ids, r.id), append(scores, r.score), append(oks, r.ok)
		ageValid, nameValid = append(ageValid, r.age != nil), append(nameValid, r.name != nil)
		if r.age != nil {
			ages = append(ages, *r.age)
		}
		if r.name != nil {
			names = append(names, *r.name)
		}
	}
	sc := func(name string, sf *schemapb.ScalarField, valid []bool) *schemapb.FieldData {
		return &schemapb.FieldData{FieldName: name, ValidData: valid, Field: &schemapb.FieldData_Scalars{Scalars: sf}}
	}
	cols := []*schemapb.FieldData{
		sc("id", &schemapb.ScalarField{Data: &schemapb.ScalarField_LongData{LongData: &schemapb.LongArray{Data: ids}}}, nil),
		{FieldName: "vec", Field: &schemapb.FieldData_Vectors{Vectors: &schemapb.VectorField{Dim: 2, Data: &schemapb.VectorField_FloatVector{FloatVector: &schemapb.FloatArray{Data: make([]float32, 2*len(rows))}}}}},
		sc("age", &schemapb.ScalarField{Data: &schemapb.ScalarField_IntData{IntData: &schemapb.IntArray{Data: ages}}}, ageValid),
		sc("score", &schemapb.ScalarField{Data: &schemapb.ScalarField_DoubleData{DoubleData: &schemapb.DoubleArray{Data: scores}}}, nil),
		sc("name", &schemapb.ScalarField{Data: &schemapb.ScalarField_StringData{StringData: &schemapb.StringArray{Data: names}}}, nameValid),
		sc("ok", &schemapb.ScalarField{Data: &schemapb.ScalarField_BoolData{BoolData: &schemapb.BoolArray{Data: oks}}}, nil),
	}
	r, err := batch.FromFieldData(testSchema(), cols, uint32(len(rows)), batch.FromOptions{})
	require.NoError(t, err)
	t.Cleanup(r.Release)
	rec := r.Record(1)
	t.Cleanup(rec.Release)
	return rec
}

func ptr[T any](v T) *T { return &v }

var fixture = []row{
	{id: 1, age: ptr[int32](20), score: 1.5, name: ptr("alice"), ok: true},
	{id: 2, age: nil, score: -2, name: ptr("bob"), ok: false},
	{id: 3, age: ptr[int32](35), score: 3, name: nil, ok: true},
	{id: 4, age: ptr[int32](20), score: 10, name: ptr("al_ce%"), ok: false},
	{id: 5, age: ptr[int32](-1), score: 0, name: ptr("émile"), ok: true},
}

func matches(t *testing.T, filter string, rows []row) []int64 {
	t.Helper()
	n, err := Parse(filter, testSchema())
	require.NoError(t, err, filter)
	bits, err := Eval(n, record(t, rows))
	require.NoError(t, err)
	out := []int64{}
	for i, ok := bits.NextSet(0); ok; i, ok = bits.NextSet(i + 1) {
		out = append(out, rows[i].id)
	}
	return out
}

func TestEval(t *testing.T) {
	for _, c := range []struct {
		filter string
		want   []int64
	}{
		{"id == 3", []int64{3}},
		{"3 == id", []int64{3}},
		{"id in [1, 4, 9]", []int64{1, 4}},
		{"id not in [1, 4]", []int64{2, 3, 5}},
		{"id in []", []int64{}},
		{"age > 19", []int64{1, 3, 4}},
		{"19 < age", []int64{1, 3, 4}},
		{"age >= 20 and age <= 20", []int64{1, 4}},
		{"age != 20", []int64{3, 5}},                            // the null age is unknown, not true
		{"not (age == 20)", []int64{3, 5}},                      // not of unknown is unknown
		{"age is null", []int64{2}},                             //
		{"age is not null", []int64{1, 3, 4, 5}},                //
		{"age > 30 or ok", []int64{1, 3, 5}},                    // unknown or true is true
		{"age > 30 || !ok", []int64{2, 3, 4}},                   // unknown or true (row 2: !ok) is true
		{"age > 30 && ok", []int64{3}},                          //
		{"not (age > 30 and ok == false)", []int64{1, 3, 4, 5}}, // row 2: unknown and true → unknown
		{"score < 0", []int64{2}},
		{"score != 1.5", []int64{2, 3, 4, 5}},
		{"score >= -2", []int64{1, 2, 3, 4, 5}},
		{"score in [1.5, 10]", []int64{1, 4}},
		{`name == "bob"`, []int64{2}},
		{`name > 'b'`, []int64{2, 5}},
		{`name like "al%"`, []int64{1, 4}},
		{`name like "%e"`, []int64{1, 5}},
		{`name like "_ob"`, []int64{2}},
		{`name like "al\\_ce\\%"`, []int64{4}},
		{`name like "%"`, []int64{1, 2, 4, 5}},
		{`name in ["bob", "x"]`, []int64{2}},
		{`name not in ["bob"]`, []int64{1, 4, 5}},
		{"ok", []int64{1, 3, 5}},
		{"ok == false", []int64{2, 4}},
		{"ok != True", []int64{2, 4}},
		{"(id < 3) AND (NOT ok)", []int64{2}},
		{"id == 0x5", []int64{5}},
	} {
		t.Run(c.filter, func(t *testing.T) {
			require.Equal(t, c.want, matches(t, c.filter, fixture))
		})
	}
}

func TestParseRejects(t *testing.T) {
	for _, c := range []struct {
		filter string
		pos    int
		token  string
		msg    string
	}{
		{"", 0, "", "the expression is empty"},
		{"nope == 1", 0, "nope", "field nope not exist"},
		{"id == ", 6, "", "expected a value"},
		{"id = 1", 3, "=", "unexpected character"},
		{`id == "1"`, 6, `"1"`, "cannot compare Int64 field id with \"1\""},
		{`name > 3`, 7, "3", "cannot compare VarChar field name with 3"},
		{"ok > true", 5, "true", "a Bool field compares with == and != only"},
		{"age in [1, 2", 12, "", "expected `,` or `]`"},
		{"age in (1)", 7, "(", "expected `[` to open the list"},
		{"(id == 1", 8, "", "expected `)`"},
		{"id == 1 ok", 8, "ok", "unexpected token"},
		{"score like 'a%'", 0, "score", "like applies to VarChar fields"},
		{"age > 19.5", 6, "19.5", "cannot compare Int32 field age with 19.5"},
		{"Not age == 1", 0, "Not", "field Not not exist"}, // keywords are lower or upper case only
		{"vec == 1", 0, "vec", "filters on FloatVector fields are not supported by Weir yet"},
		{"tags == 1", 0, "tags", "filters on Array fields are not supported by Weir yet"},
		{`name == "a`, 8, `"a`, "unterminated string"},
		{`name == "\q"`, 8, `"\q"`, "invalid escape in string"},
		{"id == 99999999999999999999", 6, "99999999999999999999", "not an Int64 integer"},
		{"age", 3, "", "expected a comparison, in, like or is after age"},
		{"age is nul", 7, "nul", "expected `null`"},
		{"id == 1 and", 11, "", "expected a field name"},
		{strings.Repeat("(", MaxDepth+1) + "ok" + strings.Repeat(")", MaxDepth+1), MaxDepth, "(", "nests deeper than"},
	} {
		t.Run(c.filter, func(t *testing.T) {
			_, err := Parse(c.filter, testSchema())
			var e *Error
			require.True(t, errors.As(err, &e), "%v", err)
			require.Equal(t, c.pos, e.Pos, "%v", err)
			require.Equal(t, c.token, e.Token, "%v", err)
			require.Contains(t, e.Msg, c.msg)
			require.Contains(t, err.Error(), fmt.Sprintf("at position %d", c.pos))
		})
	}
}

// TestEvalMatchesARowByRowReference: random expressions over random rows (nulls included) select exactly the rows a plain row-by-row three-valued interpretation selects.
func TestEvalMatchesARowByRowReference(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 40).Draw(t, "rows")
		rows := make([]row, n)
		for i := range rows {
			rows[i].id = int64(i)
			if rapid.Bool().Draw(t, "ageNull") {
				rows[i].age = ptr(rapid.Int32Range(-3, 3).Draw(t, "age"))
			}
			rows[i].score = rapid.SampledFrom([]float64{-1, 0, 0.5, 2}).Draw(t, "score")
			if rapid.Bool().Draw(t, "nameNull") {
				rows[i].name = ptr(rapid.SampledFrom([]string{"", "a", "ab", "b", "ba"}).Draw(t, "name"))
			}
			rows[i].ok = rapid.Bool().Draw(t, "ok")
		}
		filter := genExpr(t, 0)
		node, err := Parse(filter, testSchema())
		if err != nil {
			t.Fatalf("%s: %v", filter, err)
		}
		bits, err := Eval(node, record(t, rows))
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range rows {
			v, known := reference(node, r)
			if got := bits.Test(uint(i)); got != (v && known) {
				t.Fatalf("%s, row %+v: got %v, want %v (known %v)", filter, r, got, v, known)
			}
		}
	})
}

func genExpr(t *rapid.T, depth int) string {
	if depth < 3 && rapid.IntRange(0, 2).Draw(t, "combine") > 0 {
		a, b := genExpr(t, depth+1), genExpr(t, depth+1)
		switch rapid.IntRange(0, 2).Draw(t, "op") {
		case 0:
			return "(" + a + " and " + b + ")"
		case 1:
			return "(" + a + " || " + b + ")"
		default:
			return "not " + a
		}
	}
	op := rapid.SampledFrom([]string{"==", "!=", "<", "<=", ">", ">="}).Draw(t, "cmp")
	switch rapid.IntRange(0, 6).Draw(t, "leaf") {
	case 0:
		return fmt.Sprintf("age %s %d", op, rapid.IntRange(-3, 3).Draw(t, "lit"))
	case 1:
		return fmt.Sprintf("%v %s score", rapid.SampledFrom([]float64{-1, 0, 0.5, 1}).Draw(t, "f"), op)
	case 2:
		return fmt.Sprintf("name %s %q", op, rapid.SampledFrom([]string{"", "a", "b"}).Draw(t, "s"))
	case 3:
		return "age in [0, 1, -2]"
	case 4:
		return `name not in ["a", "ba"]`
	case 5:
		return "age is null"
	default:
		return `name like "a%"`
	}
}

// reference evaluates n on one row with SQL's three-valued logic.
func reference(n Node, r row) (val, known bool) {
	switch n := n.(type) {
	case And:
		a, ak := reference(n.L, r)
		b, bk := reference(n.R, r)
		if ak && !a || bk && !b {
			return false, true
		}
		return a && b, ak && bk
	case Or:
		a, ak := reference(n.L, r)
		b, bk := reference(n.R, r)
		if ak && a || bk && b {
			return true, true
		}
		return false, ak && bk
	case Not:
		x, k := reference(n.X, r)
		return !x, k
	case IsNull:
		return (r.age == nil) != n.Not, true
	case Like:
		if r.name == nil {
			return false, false
		}
		return strings.HasPrefix(*r.name, "a"), true
	case In:
		switch n.Field.Name {
		case "age":
			if r.age == nil {
				return false, false
			}
			hit := false
			for _, v := range n.Values {
				hit = hit || int64(*r.age) == v.I
			}
			return hit != n.Not, true
		default:
			if r.name == nil {
				return false, false
			}
			hit := false
			for _, v := range n.Values {
				hit = hit || *r.name == v.S
			}
			return hit != n.Not, true
		}
	case Compare:
		var c int
		switch n.Field.Name {
		case "age":
			if r.age == nil {
				return false, false
			}
			c = cmp.Compare(int64(*r.age), n.Value.I)
		case "score":
			c = cmpF(r.score, asFloat(n.Value))
		default:
			if r.name == nil {
				return false, false
			}
			c = strings.Compare(*r.name, n.Value.S)
		}
		return holds(n.Op, c), true
	}
	panic(fmt.Sprintf("reference: %T", n))
}

// TestLongChainsAreRefused: a chain of and/or is a tree as deep as it is long; past MaxTerms
// operators, of either kind, it is refused instead of exhausting the evaluator's stack.
func TestLongChainsAreRefused(t *testing.T) {
	for _, op := range []string{"and", "or", "&&", "||"} {
		_, err := Parse(strings.Repeat("ok "+op+" ", MaxTerms)+"ok", testSchema())
		require.NoError(t, err, op)
		_, err = Parse(strings.Repeat("ok "+op+" ", MaxTerms+1)+"ok", testSchema())
		var e *Error
		require.True(t, errors.As(err, &e), "%s: %v", op, err)
		require.Contains(t, e.Msg, "more than 4096 and/or operators", op)
	}
}

// TestFloatFieldsCompareInFloat32: a Float field's values compare with literals rounded to
// float32, as Milvus casts the literal to the column's type.
func TestFloatFieldsCompareInFloat32(t *testing.T) {
	sch := testSchema()
	sch.Fields = append(sch.Fields, &schemapb.FieldSchema{Name: "f", DataType: schemapb.DataType_Float, FieldID: 200})
	cols := []*schemapb.FieldData{
		{FieldName: "id", Field: &schemapb.FieldData_Scalars{Scalars: &schemapb.ScalarField{Data: &schemapb.ScalarField_LongData{LongData: &schemapb.LongArray{Data: []int64{1}}}}}},
		{FieldName: "vec", Field: &schemapb.FieldData_Vectors{Vectors: &schemapb.VectorField{Dim: 2, Data: &schemapb.VectorField_FloatVector{FloatVector: &schemapb.FloatArray{Data: make([]float32, 2)}}}}},
		{FieldName: "score", Field: &schemapb.FieldData_Scalars{Scalars: &schemapb.ScalarField{Data: &schemapb.ScalarField_DoubleData{DoubleData: &schemapb.DoubleArray{Data: []float64{0}}}}}},
		{FieldName: "ok", Field: &schemapb.FieldData_Scalars{Scalars: &schemapb.ScalarField{Data: &schemapb.ScalarField_BoolData{BoolData: &schemapb.BoolArray{Data: []bool{true}}}}}},
		{FieldName: "f", Field: &schemapb.FieldData_Scalars{Scalars: &schemapb.ScalarField{Data: &schemapb.ScalarField_FloatData{FloatData: &schemapb.FloatArray{Data: []float32{0.1}}}}}},
	}
	r, err := batch.FromFieldData(sch, cols, 1, batch.FromOptions{})
	require.NoError(t, err)
	defer r.Release()
	rec := r.Record(1)
	defer rec.Release()
	for filter, want := range map[string]bool{"f == 0.1": true, "f in [0.1]": true, "f <= 0.1": true, "f > 0.1": false, "f != 0.1": false} {
		n, err := Parse(filter, sch)
		require.NoError(t, err)
		bits, err := Eval(n, rec)
		require.NoError(t, err)
		require.Equal(t, want, bits.Test(0), filter)
	}
}

// TestParseNeverPanics: any input, including ones assembled from the grammar's own pieces,
// parses or fails with an *Error.
func TestParseNeverPanics(t *testing.T) {
	pieces := []string{"id", "age", "name", "ok", "score", "nope", "==", "!=", "<", ">=", "=", "!", "&&", "||",
		"and", "OR", "not", "in", "like", "is", "null", "(", ")", "[", "]", ",", "1", "-2", "1.5", "1e", "0x", `"a"`, `'b`, `"\`, "true", " ", "é", "$"}
	rapid.Check(t, func(t *rapid.T) {
		var b strings.Builder
		for range rapid.IntRange(0, 12).Draw(t, "n") {
			b.WriteString(rapid.SampledFrom(pieces).Draw(t, "piece"))
			if rapid.Bool().Draw(t, "space") {
				b.WriteByte(' ')
			}
		}
		_, err := Parse(b.String(), testSchema())
		var e *Error
		if err != nil && !errors.As(err, &e) {
			t.Fatalf("%q: %v is not an *Error", b.String(), err)
		}
	})
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"id == 1", `name like "a%"`, "not (age > 1 or ok)", "age in [1, 2]", "(((", `"\x`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = Parse(s, testSchema())
	})
}
