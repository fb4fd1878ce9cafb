package proxy

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/apierr"
	"github.com/weir-db/weir/internal/dml"
)

var (
	intPK = &schemapb.FieldSchema{Name: "id", DataType: schemapb.DataType_Int64, IsPrimaryKey: true}
	strPK = &schemapb.FieldSchema{Name: "key", DataType: schemapb.DataType_VarChar, IsPrimaryKey: true}
)

func TestParseDeleteExprAccepts(t *testing.T) {
	cases := []struct {
		expr string
		pk   *schemapb.FieldSchema
		want dml.PKs
	}{
		{"id in [1,2,3]", intPK, dml.PKs{Ints: []int64{1, 2, 3}}},
		{"id in []", intPK, dml.PKs{Ints: []int64{}}},
		{"id in [ ]", intPK, dml.PKs{Ints: []int64{}}},
		{"id IN [7]", intPK, dml.PKs{Ints: []int64{7}}},
		{"id in[1,]", intPK, dml.PKs{Ints: []int64{1}}},
		{"\tid\nin\r[ 1 ,\n2 ]\n", intPK, dml.PKs{Ints: []int64{1, 2}}},
		{"id == 5", intPK, dml.PKs{Ints: []int64{5}}},
		{"id==-5", intPK, dml.PKs{Ints: []int64{-5}}},
		{"id == +5", intPK, dml.PKs{Ints: []int64{5}}},
		{"id in [0x1F, 0b101, 017, 0o17, 0]", intPK, dml.PKs{Ints: []int64{31, 5, 15, 15, 0}}},
		{"id in [-9223372036854775808, 9223372036854775807]", intPK, dml.PKs{Ints: []int64{math.MinInt64, math.MaxInt64}}},
		{"((id in [1]))", intPK, dml.PKs{Ints: []int64{1}}},
		{`key in ["a","b"]`, strPK, dml.PKs{Strs: []string{"a", "b"}}},
		{`key in ['a', "b", ]`, strPK, dml.PKs{Strs: []string{"a", "b"}}},
		{`key in []`, strPK, dml.PKs{Strs: []string{}}},
		{`key == ''`, strPK, dml.PKs{Strs: []string{""}}},
		{`key == "x"`, strPK, dml.PKs{Strs: []string{"x"}}},
		{`key in ["it's", 'say "hi"', 'it\'s', "say \"hi\""]`, strPK, dml.PKs{Strs: []string{"it's", `say "hi"`, "it's", `say "hi"`}}},
		{`key in ["a\\b", "tab\there", "nl\n", "\u00e9", "\x41", "\101", "ü", "[,]"]`, strPK, dml.PKs{Strs: []string{`a\b`, "tab\there", "nl\n", "é", "A", "A", "ü", "[,]"}}},
	}
	for _, c := range cases {
		t.Run(c.expr, func(t *testing.T) {
			got, err := parseDeleteExpr(c.expr, c.pk)
			require.NoError(t, err)
			require.Equal(t, c.want, got)
		})
	}
}

func TestParseDeleteExprRejects(t *testing.T) {
	cases := []struct {
		expr string
		pk   *schemapb.FieldSchema
		want string
	}{
		{"", intPK, "delete plan can't be empty or always true"},
		{"   ", intPK, "delete plan can't be empty or always true"},
		{"true", intPK, "delete plan can't be empty or always true"},
		{"score in [1]", intPK, `field "score" is not the primary key "id"`}, // a field of the collection: unsupported
		{"ids in [1]", intPK, "error: field ids not exist"},
		{"id > 5", intPK, "a range or inequality of the primary key"},
		{"id = 5", intPK, "expected `==` or `in`"},
		{"id not in [1]", intPK, "`not` on the primary key"},
		{"id in (1, 2)", intPK, "expected `[` to open the key list"},
		{"id in [1 2]", intPK, "expected `,` or `]`"},
		{"id in [1,,2]", intPK, "expected a key, found \",2]\""},
		{"id in [1", intPK, "expected `,` or `]`"},
		{"id in [", intPK, "found the end of the expression"},
		{"id ==", intPK, "found the end of the expression"},
		{"id in [1] and id in [2]", intPK, `unexpected "and id in [2]"`},
		{"id in [1.5]", intPK, "1.5 is not an integer, and the primary key \"id\" is Int64"},
		{"id == 1e3", intPK, "1e3 is not an integer"},
		{"id == 1e+3", intPK, "1e+3 is not an integer"},
		{"id == .5", intPK, ".5 is not an integer"},
		{"id in [9223372036854775808]", intPK, "9223372036854775808 is out of the Int64 range"},
		{"id in [-9223372036854775809]", intPK, "out of the Int64 range"},
		{"id in [1_000]", intPK, "no underscores"},
		{"id in [0xZZ]", intPK, `"0xZZ" is not an integer`},
		{"id in [-]", intPK, `"-" is not an integer`},
		{"id in [abc]", intPK, `expected a key, found "abc]"`},
		{`id in ["1"]`, intPK, `is Int64, but "1" is a string`},
		{`key in [1]`, strPK, "is VarChar, but 1 is a number (quote the key)"},
		{`key in ["a]`, strPK, "unterminated string"},
		{`key in ['a"]`, strPK, "unterminated string"},
		{`key in ["\q"]`, strPK, "invalid escape in string"},
		{`key in ["\xff"]`, strPK, "not valid UTF-8"},
		{"key == \"\xff\"", strPK, "not valid UTF-8"},
		{"(id in [1]", intPK, "expected `)`"},
		{"id in [1])", intPK, `unexpected ")"`},
		{"in [1]", intPK, "error: field in not exist"},
		{"[1]", intPK, "expected the primary key field name"},
		{"id in {ids}", intPK, "expected `[` to open the key list"},
	}
	for _, c := range cases {
		t.Run(c.expr, func(t *testing.T) {
			_, err := parseDeleteExpr(c.expr, c.pk, "score", c.pk.GetName())
			require.Error(t, err)
			require.Equal(t, apierr.ParameterInvalid, apierr.KindOf(err))
			require.Contains(t, err.Error(), c.want)
			switch {
			case strings.Contains(c.want, "always true"):
				require.Contains(t, err.Error(), "delete plan can't be empty or always true : "+c.expr+": invalid parameter")
				return
			case strings.Contains(c.want, "is not the primary key"), strings.Contains(c.want, "inequality"), strings.Contains(c.want, "`not`"):
				// Valid Milvus filters, but not deletes by key: the delete queries their keys.
				require.Contains(t, err.Error(), "not a delete by primary key")
				return
			default:
				require.Contains(t, err.Error(), "failed to create delete plan: cannot parse expression: "+c.expr+", error: ")
			}
		})
	}

	t.Run("long expressions are quoted short", func(t *testing.T) {
		expr := "id in [" + strings.Repeat("1, ", 1000) + "x]"
		_, err := parseDeleteExpr(expr, intPK)
		require.Error(t, err)
		require.Less(t, len(err.Error()), 500)
		require.Contains(t, err.Error(), `...`)
	})
}

// render writes keys as an expression the way the SDKs do.
func render(field string, keys dml.PKs, single bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s in [", field)
	if keys.Strs != nil {
		for i, k := range keys.Strs {
			if i > 0 {
				b.WriteString(", ")
			}
			q := strconv.Quote(k)
			if single {
				// strconv.Quote escapes what either quote needs; swap the delimiters.
				q = "'" + strings.ReplaceAll(q[1:len(q)-1], "'", `\'`) + "'"
			}
			b.WriteString(q)
		}
	} else {
		for i, k := range keys.Ints {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(strconv.FormatInt(k, 10))
		}
	}
	b.WriteString("]")
	return b.String()
}

// FuzzParseDeleteExpr checks that no input panics the parser, that every rejection is a
// ParameterInvalid, and that accepted keys survive being written out and parsed again.
func FuzzParseDeleteExpr(f *testing.F) {
	for _, s := range []string{
		"id in [1,2,3]", "id == 5", "id in []", `key in ["a", 'b']`, `key == "\u00e9\n"`, "(id in [0x10, -7,])",
		"id in [1.5]", `key in ["\xff"]`, "id in [9223372036854775808]", "id in [1] or x", "((", `"`, "id in ['",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		for _, pk := range []*schemapb.FieldSchema{intPK, strPK} {
			keys, err := parseDeleteExpr(expr, pk)
			if err != nil {
				require.Equal(t, apierr.ParameterInvalid, apierr.KindOf(err))
				continue
			}
			if pk == strPK {
				require.NotNil(t, keys.Strs)
				require.Nil(t, keys.Ints)
			} else {
				require.NotNil(t, keys.Ints)
				require.Nil(t, keys.Strs)
			}
			for _, single := range []bool{false, true} {
				again, err := parseDeleteExpr(render(pk.GetName(), keys, single), pk)
				require.NoError(t, err)
				require.Equal(t, keys, again)
			}
		}
	})
}
