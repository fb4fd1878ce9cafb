// Package expr parses Milvus filter expressions into Weir's own syntax tree and evaluates them
// over the columns of a batch of rows into a bitset of the rows that match. Search, query and
// delete by filter share it.
//
// The grammar is the first part of Milvus's (its planparserv2 grammar): comparisons
// (== != < <= > >=) of a scalar field with a literal, in either order; `field in [...]` and
// `field not in [...]`; `field like "pattern"` (% any run, _ one character, \ escapes);
// `field is null` and `field is not null`; and, or, not (also &&, ||, !) with parentheses; a
// Bool field alone is a predicate. Literals are integers, floats, strings in single or double
// quotes with Go escapes, and true/false (also True, TRUE, False, FALSE). Keywords are lower or
// upper case (and, AND), as in Milvus's grammar.
//
// Nulls follow SQL's three-valued logic, as Milvus's do: a comparison with a null value is
// unknown, not of unknown is unknown, and a row matches only when the whole expression is true.
package expr

import (
	"fmt"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
)

// Node is a parsed expression.
type Node interface {
	// String renders the node in the grammar, fully parenthesised.
	String() string
}

// Op is a comparison operator.
type Op string

// The comparison operators.
const (
	Eq Op = "=="
	Ne Op = "!="
	Lt Op = "<"
	Le Op = "<="
	Gt Op = ">"
	Ge Op = ">="
)

// Field is a schema field an expression reads.
type Field struct {
	Name string
	Type schemapb.DataType
}

// Kind is the type of a literal.
type Kind int

// The kinds of literal.
const (
	Int Kind = iota
	Float
	String
	Bool
)

// Value is a literal.
type Value struct {
	Kind Kind
	I    int64
	F    float64
	S    string
	B    bool
}

func (v Value) String() string {
	switch v.Kind {
	case Int:
		return fmt.Sprint(v.I)
	case Float:
		return fmt.Sprint(v.F)
	case String:
		return fmt.Sprintf("%q", v.S)
	}
	return fmt.Sprint(v.B)
}

// Compare is `field op value`.
type Compare struct {
	Field Field
	Op    Op
	Value Value
}

// In is `field in [values]`, or `not in` when Not.
type In struct {
	Field  Field
	Values []Value
	Not    bool
}

// Like is `field like pattern`.
type Like struct {
	Field   Field
	Pattern string
}

// IsNull is `field is null`, or `is not null` when Not.
type IsNull struct {
	Field Field
	Not   bool
}

// BoolField is a Bool field used as a predicate.
type BoolField struct{ Field Field }

// And, Or and Not combine expressions.
type (
	And struct{ L, R Node }
	Or  struct{ L, R Node }
	Not struct{ X Node }
)

func (c Compare) String() string   { return fmt.Sprintf("(%s %s %s)", c.Field.Name, c.Op, c.Value) }
func (b BoolField) String() string { return b.Field.Name }
func (l Like) String() string      { return fmt.Sprintf("(%s like %q)", l.Field.Name, l.Pattern) }
func (a And) String() string       { return fmt.Sprintf("(%s and %s)", a.L, a.R) }
func (o Or) String() string        { return fmt.Sprintf("(%s or %s)", o.L, o.R) }
func (n Not) String() string       { return fmt.Sprintf("(not %s)", n.X) }

func (i In) String() string {
	op := "in"
	if i.Not {
		op = "not in"
	}
	s := fmt.Sprintf("(%s %s [", i.Field.Name, op)
	for k, v := range i.Values {
		if k > 0 {
			s += ", "
		}
		s += v.String()
	}
	return s + "])"
}

func (n IsNull) String() string {
	if n.Not {
		return fmt.Sprintf("(%s is not null)", n.Field.Name)
	}
	return fmt.Sprintf("(%s is null)", n.Field.Name)
}
