package expr

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
)

// Error is a filter Weir cannot use: what is wrong, and where (a byte offset) and at which token
// of the expression.
type Error struct {
	Pos   int
	Token string
	Msg   string
}

func (e *Error) Error() string {
	if e.Token == "" {
		return fmt.Sprintf("at position %d, the end of the expression: %s", e.Pos, e.Msg)
	}
	return fmt.Sprintf("at position %d, near %q: %s", e.Pos, e.Token, e.Msg)
}

// MaxDepth bounds the nesting of an expression, and MaxTerms its number of and/or operators, so
// that no input can exhaust the parser's or the evaluator's stack (a chain of and is a tree as
// deep as it is long).
const (
	MaxDepth = 512
	MaxTerms = 4096
)

// Parse parses filter s over the fields of collection schema sch and checks that each field
// exists and each literal suits its field's type.
func Parse(s string, sch *schemapb.CollectionSchema) (Node, error) {
	if !utf8.ValidString(s) {
		return nil, &Error{Msg: "the expression is not valid UTF-8"}
	}
	toks, err := lex(s)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks, src: s, fields: map[string]*schemapb.FieldSchema{}}
	for _, f := range sch.GetFields() {
		p.fields[f.GetName()] = f
	}
	if p.peek().kind == tEOF {
		return nil, p.fail(p.peek(), "the expression is empty")
	}
	n, err := p.or()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, p.fail(t, "unexpected token")
	}
	return n, nil
}

type tokKind int

const (
	tEOF tokKind = iota
	tIdent
	tInt
	tFloat
	tString
	tOp     // == != < <= > >= && || !
	tLParen // (
	tRParen // )
	tLBrack // [
	tRBrack // ]
	tComma
)

type token struct {
	kind tokKind
	text string // as written
	pos  int
	str  string // a string literal's value
}

func lex(s string) ([]token, error) {
	var out []token
	i := 0
	for {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
			i++
		}
		if i == len(s) {
			return append(out, token{kind: tEOF, pos: i}), nil
		}
		start, c := i, s[i]
		switch {
		case c == '(' || c == ')' || c == '[' || c == ']' || c == ',':
			kind := map[byte]tokKind{'(': tLParen, ')': tRParen, '[': tLBrack, ']': tRBrack, ',': tComma}[c]
			out = append(out, token{kind: kind, text: s[i : i+1], pos: i})
			i++
		case strings.HasPrefix(s[i:], "==") || strings.HasPrefix(s[i:], "!=") || strings.HasPrefix(s[i:], "<=") ||
			strings.HasPrefix(s[i:], ">=") || strings.HasPrefix(s[i:], "&&") || strings.HasPrefix(s[i:], "||"):
			out = append(out, token{kind: tOp, text: s[i : i+2], pos: i})
			i += 2
		case c == '<' || c == '>' || c == '!':
			out = append(out, token{kind: tOp, text: s[i : i+1], pos: i})
			i++
		case c == '"' || c == '\'':
			j := i + 1
			for j < len(s) && s[j] != c {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(s) {
				return nil, &Error{Pos: start, Token: s[start:], Msg: "unterminated string"}
			}
			body := s[i+1 : j]
			if c == '\'' { // unquote as a double-quoted string
				body = strings.ReplaceAll(strings.ReplaceAll(body, `\'`, `'`), `"`, `\"`)
			}
			v, err := strconv.Unquote(`"` + body + `"`)
			if err != nil {
				return nil, &Error{Pos: start, Token: s[start : j+1], Msg: "invalid escape in string"}
			}
			out = append(out, token{kind: tString, text: s[start : j+1], pos: start, str: v})
			i = j + 1
		case c >= '0' && c <= '9' || c == '.' || (c == '-' || c == '+') && i+1 < len(s) && (s[i+1] >= '0' && s[i+1] <= '9' || s[i+1] == '.'):
			j := i + 1
			for j < len(s) && (isNumChar(s[j]) || (s[j] == '-' || s[j] == '+') && (s[j-1] == 'e' || s[j-1] == 'E')) {
				j++
			}
			text := s[i:j]
			kind := tInt
			if strings.ContainsAny(text, ".eE") && !strings.HasPrefix(strings.TrimLeft(text, "+-"), "0x") {
				kind = tFloat
			}
			out = append(out, token{kind: kind, text: text, pos: i})
			i = j
		case isIdentStart(c):
			j := i + 1
			for j < len(s) && isIdentChar(s[j]) {
				j++
			}
			out = append(out, token{kind: tIdent, text: s[i:j], pos: i})
			i = j
		default:
			_, size := utf8.DecodeRuneInString(s[i:])
			return nil, &Error{Pos: i, Token: s[i : i+size], Msg: "unexpected character"}
		}
	}
}

func isNumChar(c byte) bool {
	return c >= '0' && c <= '9' || c == '.' || c == 'e' || c == 'E' || c == 'x' || c == 'X' ||
		c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == '_'
}
func isIdentStart(c byte) bool {
	return c == '_' || c == '$' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
func isIdentChar(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }

type parser struct {
	toks   []token
	i      int
	src    string
	fields map[string]*schemapb.FieldSchema
	depth  int
	terms  int
}

// term counts one more and/or operator.
func (p *parser) term(t token) error {
	if p.terms++; p.terms > MaxTerms {
		return p.fail(t, "the expression has more than %d and/or operators", MaxTerms)
	}
	return nil
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) fail(t token, format string, args ...any) error {
	return &Error{Pos: t.pos, Token: t.text, Msg: fmt.Sprintf(format, args...)}
}

// keyword reports whether t is the keyword kw, in lower or upper case (Milvus's grammar has
// both spellings and no other: a field may be called Not).
func keyword(t token, kw string) bool {
	return t.kind == tIdent && (t.text == kw || t.text == strings.ToUpper(kw))
}

func (p *parser) or() (Node, error) {
	l, err := p.and()
	if err != nil {
		return nil, err
	}
	for t := p.peek(); keyword(t, "or") || t.kind == tOp && t.text == "||"; t = p.peek() {
		p.next()
		if err := p.term(t); err != nil {
			return nil, err
		}
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		l = Or{L: l, R: r}
	}
	return l, nil
}

func (p *parser) and() (Node, error) {
	l, err := p.unary()
	if err != nil {
		return nil, err
	}
	for t := p.peek(); keyword(t, "and") || t.kind == tOp && t.text == "&&"; t = p.peek() {
		p.next()
		if err := p.term(t); err != nil {
			return nil, err
		}
		r, err := p.unary()
		if err != nil {
			return nil, err
		}
		l = And{L: l, R: r}
	}
	return l, nil
}

func (p *parser) unary() (Node, error) {
	if p.depth++; p.depth > MaxDepth {
		return nil, p.fail(p.peek(), "the expression nests deeper than %d", MaxDepth)
	}
	defer func() { p.depth-- }()
	t := p.peek()
	if keyword(t, "not") || t.kind == tOp && t.text == "!" {
		p.next()
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		return Not{X: x}, nil
	}
	if t.kind == tLParen {
		p.next()
		n, err := p.or()
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.kind != tRParen {
			return nil, p.fail(c, "expected `)`")
		}
		return n, nil
	}
	return p.predicate()
}

var flipped = map[Op]Op{Eq: Eq, Ne: Ne, Lt: Gt, Le: Ge, Gt: Lt, Ge: Le}

func (p *parser) predicate() (Node, error) {
	t := p.next()
	switch t.kind {
	case tIdent, tInt, tFloat, tString:
	default:
		return nil, p.fail(t, "expected a field name")
	}
	if t.kind != tIdent || isLiteralWord(t) {
		// `literal op field`
		lit, err := p.literal(t)
		if err != nil {
			return nil, err
		}
		opTok := p.next()
		op, ok := compareOp(opTok)
		if !ok {
			return nil, p.fail(opTok, "expected a comparison operator")
		}
		f, err := p.field(p.next())
		if err != nil {
			return nil, err
		}
		return p.compare(f, flipped[op], lit, t)
	}
	f, err := p.field(t)
	if err != nil {
		return nil, err
	}
	next := p.peek()
	if op, ok := compareOp(next); ok {
		p.next()
		lt := p.next()
		lit, err := p.literal(lt)
		if err != nil {
			return nil, err
		}
		return p.compare(f, op, lit, lt)
	}
	switch {
	case keyword(next, "in"):
		p.next()
		return p.in(f, false)
	case keyword(next, "not") && keyword(p.toks[min(p.i+1, len(p.toks)-1)], "in"):
		p.next()
		p.next()
		return p.in(f, true)
	case keyword(next, "like"):
		p.next()
		pt := p.next()
		if pt.kind != tString {
			return nil, p.fail(pt, "like needs a string pattern")
		}
		if f.Type != schemapb.DataType_VarChar {
			return nil, p.fail(t, "like applies to VarChar fields, and %s is %s", f.Name, f.Type)
		}
		return Like{Field: f, Pattern: pt.str}, nil
	case keyword(next, "is"):
		p.next()
		not := false
		if keyword(p.peek(), "not") {
			p.next()
			not = true
		}
		if n := p.next(); !keyword(n, "null") {
			return nil, p.fail(n, "expected `null`")
		}
		return IsNull{Field: f, Not: not}, nil
	}
	if f.Type == schemapb.DataType_Bool {
		return BoolField{Field: f}, nil
	}
	return nil, p.fail(next, "expected a comparison, in, like or is after %s", f.Name)
}

func compareOp(t token) (Op, bool) {
	if t.kind != tOp {
		return "", false
	}
	switch Op(t.text) {
	case Eq, Ne, Lt, Le, Gt, Ge:
		return Op(t.text), true
	}
	return "", false
}

func isLiteralWord(t token) bool {
	switch t.text {
	case "true", "True", "TRUE", "false", "False", "FALSE":
		return true
	}
	return false
}

func (p *parser) field(t token) (Field, error) {
	if t.kind != tIdent || isLiteralWord(t) {
		return Field{}, p.fail(t, "expected a field name")
	}
	f, ok := p.fields[t.text]
	if !ok {
		return Field{}, p.fail(t, "field %s not exist", t.text)
	}
	switch dt := f.GetDataType(); dt {
	case schemapb.DataType_Bool, schemapb.DataType_Int8, schemapb.DataType_Int16, schemapb.DataType_Int32,
		schemapb.DataType_Int64, schemapb.DataType_Float, schemapb.DataType_Double, schemapb.DataType_VarChar:
		return Field{Name: f.GetName(), Type: dt}, nil
	default:
		return Field{}, p.fail(t, "filters on %s fields are not supported by Weir yet", dt)
	}
}

func (p *parser) literal(t token) (Value, error) {
	switch t.kind {
	case tInt:
		v, err := strconv.ParseInt(t.text, 0, 64)
		if err != nil {
			return Value{}, p.fail(t, "not an Int64 integer")
		}
		return Value{Kind: Int, I: v}, nil
	case tFloat:
		v, err := strconv.ParseFloat(t.text, 64)
		if err != nil {
			return Value{}, p.fail(t, "not a number")
		}
		return Value{Kind: Float, F: v}, nil
	case tString:
		return Value{Kind: String, S: t.str}, nil
	case tIdent:
		if isLiteralWord(t) {
			return Value{Kind: Bool, B: strings.EqualFold(t.text, "true")}, nil
		}
	}
	return Value{}, p.fail(t, "expected a value")
}

// fits reports whether a literal of kind k can be compared with field type dt.
func fits(dt schemapb.DataType, k Kind) bool {
	switch dt {
	case schemapb.DataType_Bool:
		return k == Bool
	case schemapb.DataType_VarChar:
		return k == String
	}
	if dt == schemapb.DataType_Float || dt == schemapb.DataType_Double {
		return k == Int || k == Float
	}
	return k == Int // Milvus casts no float literal to an integer field
}

func (p *parser) compare(f Field, op Op, v Value, at token) (Node, error) {
	if !fits(f.Type, v.Kind) {
		return nil, p.fail(at, "cannot compare %s field %s with %s", f.Type, f.Name, v)
	}
	if f.Type == schemapb.DataType_Bool && op != Eq && op != Ne {
		return nil, p.fail(at, "a Bool field compares with == and != only")
	}
	return Compare{Field: f, Op: op, Value: v}, nil
}

func (p *parser) in(f Field, not bool) (Node, error) {
	if t := p.next(); t.kind != tLBrack {
		return nil, p.fail(t, "expected `[` to open the list")
	}
	n := In{Field: f, Not: not, Values: []Value{}}
	for {
		t := p.next()
		if t.kind == tRBrack {
			return n, nil
		}
		v, err := p.literal(t)
		if err != nil {
			return nil, err
		}
		if !fits(f.Type, v.Kind) {
			return nil, p.fail(t, "cannot compare %s field %s with %s", f.Type, f.Name, v)
		}
		n.Values = append(n.Values, v)
		switch sep := p.next(); sep.kind {
		case tComma:
		case tRBrack:
			return n, nil
		default:
			return nil, p.fail(sep, "expected `,` or `]`")
		}
	}
}
