package proxy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/weir-db/weir/internal/apierr"
	"github.com/weir-db/weir/internal/dml"
	"github.com/weir-db/weir/internal/expr"
)

// Delete deletes rows by primary key. The expression must name the keys (`pk in [...]` or
// `pk == v`, what the SDKs generate for a key list): Weir's proxy reads no stored data, so it
// cannot evaluate a filter. Each key goes to the channel it hashes to, one delete message per
// channel, each stamped as it is appended. A delete applies to the partition named, or to every
// partition; in a collection with a partition key always to every partition, and a name is
// refused, as in Milvus.
func (s *Server) Delete(ctx context.Context, req *milvuspb.DeleteRequest) (*milvuspb.MutationResult, error) {
	res, err := s.delete(ctx, req)
	if err != nil {
		s.logger.Debug("delete rejected", "collection", req.GetCollectionName(), "err", err)
		return &milvuspb.MutationResult{Status: apierr.Status(err)}, nil
	}
	return res, nil
}

func (s *Server) delete(ctx context.Context, req *milvuspb.DeleteRequest) (*milvuspb.MutationResult, error) {
	// Milvus's order: the collection, the expression, then the partition.
	coll, err := s.lookup(ctx, req.GetDbName(), req.GetCollectionName(), 0)
	if apierr.KindOf(err) == apierr.CollectionNotFound {
		db, _ := database(ctx, req.GetDbName())
		return nil, apierr.Milvus(apierr.DeleteCollectionNotFound, db, req.GetCollectionName())
	}
	if err != nil {
		return nil, err
	}
	if err := checkChannels(coll); err != nil {
		return nil, err
	}
	if len(req.GetExprTemplateValues()) > 0 {
		return nil, apierr.New(apierr.ParameterInvalid, "expression templates are not supported by Weir; write the keys into the expression")
	}
	pk := pkOf(coll)
	var others []string
	for _, f := range coll.Schema.GetFields() {
		others = append(others, f.GetName())
	}
	keys, err := parseDeleteExpr(req.GetExpr(), pk, others...)
	// A filter other than `pk in [...]` / `pk == v` deletes the keys of the rows it matches,
	// queried at a Strong snapshot of the loaded collection, as Milvus does.
	var byFilter expr.Node
	if err != nil {
		if f, perr := expr.Parse(req.GetExpr(), coll.Schema); perr == nil && strings.TrimSpace(req.GetExpr()) != "" {
			byFilter, err = f, nil
		} else {
			return nil, err
		}
	}
	partID := dml.AllPartitions
	if req.GetPartitionName() != "" {
		if coll.KeyPartitions > 0 {
			return nil, apierr.Milvus(apierr.KeyPartitionNamed)
		}
		p, err := s.partition(ctx, coll, req.GetPartitionName())
		if apierr.KindOf(err) == apierr.PartitionNotFound {
			return nil, apierr.Milvus(apierr.DeletePartitionNotFound, req.GetPartitionName())
		}
		if err != nil {
			return nil, err
		}
		partID = p.ID
	}
	if byFilter != nil {
		scope := partID
		if scope == dml.AllPartitions {
			scope = 0
		}
		ints, strs, err := s.Service.MatchingKeys(ctx, coll, req.GetExpr(), scope)
		if err != nil {
			return nil, err
		}
		keys = dml.PKs{Ints: ints, Strs: strs}
		if strs == nil && keys.Ints == nil {
			keys.Ints = []int64{}
		}
	}
	ids := deletedIDs(keys)
	if keys.Len() == 0 {
		return &milvuspb.MutationResult{Status: apierr.OK(), IDs: ids}, nil
	}
	msgs := make([][][]byte, coll.Shards)
	for c, p := range keysByChannel(coll, keys) {
		if p.Len() > 0 {
			if msgs[c], err = s.deleteMessages(coll.ID, partID, p); err != nil {
				return nil, err
			}
		}
	}
	_, ts, err := s.appendAll(ctx, coll, msgs)
	if err != nil {
		return nil, err
	}
	return &milvuspb.MutationResult{Status: apierr.OK(), IDs: ids, DeleteCnt: int64(keys.Len()), Timestamp: ts}, nil
}

// deletedIDs returns the keys as a MutationResult reports them, typed even when empty.
func deletedIDs(keys dml.PKs) *schemapb.IDs {
	if keys.Strs != nil {
		return &schemapb.IDs{IdField: &schemapb.IDs_StrId{StrId: &schemapb.StringArray{Data: keys.Strs}}}
	}
	return &schemapb.IDs{IdField: &schemapb.IDs_IntId{IntId: &schemapb.LongArray{Data: keys.Ints}}}
}

// maxExprQuote bounds how much of an expression an error message repeats.
const maxExprQuote = 120

// parseDeleteExpr parses a delete expression over primary key field pk. It accepts, with any
// whitespace and optional enclosing parentheses:
//
//	pk in [k1, k2, ...]   (IN also; an empty list and a trailing comma are allowed)
//	pk == k
//
// where a key is an integer literal (decimal, 0x hex, 0b binary, 0/0o octal, optional sign)
// for an Int64 key, or a string in single or double quotes with Go escapes for a VarChar key.
// The result is never nil-typed: Strs is non-nil for a VarChar key, Ints for an Int64 key.
//
// fields are the collection's other field names: an expression on one of them, or another
// comparison of the key, is a valid Milvus filter that Weir does not evaluate yet, and is
// refused in Weir's words, not as a malformed expression.
func parseDeleteExpr(expr string, pk *schemapb.FieldSchema, fields ...string) (dml.PKs, error) {
	strKey := pk.GetDataType() == schemapb.DataType_VarChar
	p := &exprParser{s: expr, pk: pk.GetName(), strKey: strKey, fields: fields}
	keys := dml.PKs{Ints: []int64{}}
	if strKey {
		keys = dml.PKs{Strs: []string{}}
	}
	switch strings.TrimSpace(expr) {
	case "", "true", "True", "TRUE":
		// Milvus refuses a delete of everything, empty or always true.
		return dml.PKs{}, apierr.Milvus(apierr.DeletePlanEmpty, expr)
	}
	if !utf8.ValidString(expr) {
		return dml.PKs{}, p.fail("the expression is not valid UTF-8")
	}
	if err := p.parse(&keys); err != nil {
		return dml.PKs{}, err
	}
	return keys, nil
}

type exprParser struct {
	s      string
	i      int
	pk     string
	strKey bool
	fields []string
}

// unsupported marks a filter that is not a delete by primary key: the delete queries the keys
// of the rows it matches instead.
func (p *exprParser) unsupported(what string) error {
	return apierr.New(apierr.ParameterInvalid, "delete expression %q: %s: not a delete by primary key", p.s, what)
}

func (p *exprParser) fail(format string, args ...any) error {
	q := p.s
	if len(q) > maxExprQuote {
		q = q[:maxExprQuote] + "..."
	}
	return apierr.Milvus(apierr.DeletePlanInvalid, q, fmt.Sprintf(format, args...))
}

func (p *exprParser) failAt(format string, args ...any) error {
	return p.fail("at offset %d: %s", p.i, fmt.Sprintf(format, args...))
}

func (p *exprParser) ws() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// peek returns the next byte after whitespace, 0 at the end.
func (p *exprParser) peek() byte {
	p.ws()
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func isIdentStart(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isIdentChar(c byte) bool  { return isIdentStart(c) || c >= '0' && c <= '9' }

func (p *exprParser) ident() string {
	p.ws()
	start := p.i
	if p.i < len(p.s) && isIdentStart(p.s[p.i]) {
		for p.i < len(p.s) && isIdentChar(p.s[p.i]) {
			p.i++
		}
	}
	return p.s[start:p.i]
}

func (p *exprParser) parse(keys *dml.PKs) error {
	depth := 0
	for p.peek() == '(' {
		p.i++
		depth++
	}
	field := p.ident()
	if field == "" {
		return p.failAt("expected the primary key field name")
	}
	if field != p.pk {
		if slices.Contains(p.fields, field) {
			return p.unsupported(fmt.Sprintf("field %q is not the primary key %q", field, p.pk))
		}
		return p.fail("field %s not exist", field)
	}
	switch c := p.peek(); {
	case c == '<' || c == '>' || c == '!':
		return p.unsupported("a range or inequality of the primary key")
	case c == '=':
		if !strings.HasPrefix(p.s[p.i:], "==") {
			return p.failAt("expected `==` or `in`")
		}
		p.i += 2
		if err := p.literal(keys); err != nil {
			return err
		}
	default:
		start := p.i
		op := p.ident()
		switch op {
		case "not", "NOT", "like", "LIKE":
			return p.unsupported("`" + op + "` on the primary key")
		}
		if op != "in" && op != "IN" {
			p.i = start
			return p.failAt("expected `in` or `==` after %q", field)
		}
		if err := p.list(keys); err != nil {
			return err
		}
	}
	for ; depth > 0; depth-- {
		if p.peek() != ')' {
			return p.failAt("expected `)`")
		}
		p.i++
	}
	if p.peek() != 0 {
		return p.failAt("unexpected %q after the key list", p.rest())
	}
	return nil
}

// rest returns a short quote of the input from the current offset.
func (p *exprParser) rest() string {
	r := p.s[p.i:]
	if len(r) > 20 {
		r = r[:20] + "..."
	}
	return r
}

func (p *exprParser) list(keys *dml.PKs) error {
	if p.peek() != '[' {
		return p.failAt("expected `[` to open the key list")
	}
	p.i++
	if p.peek() == ']' {
		p.i++
		return nil
	}
	for {
		if err := p.literal(keys); err != nil {
			return err
		}
		switch p.peek() {
		case ',':
			p.i++
			if p.peek() == ']' { // a trailing comma
				p.i++
				return nil
			}
		case ']':
			p.i++
			return nil
		default:
			return p.failAt("expected `,` or `]` in the key list")
		}
	}
}

func (p *exprParser) literal(keys *dml.PKs) error {
	c := p.peek()
	switch {
	case c == '"' || c == '\'':
		v, err := p.str(c)
		if err != nil {
			return err
		}
		if !p.strKey {
			return p.fail("the primary key %q is Int64, but %q is a string", p.pk, v)
		}
		keys.Strs = append(keys.Strs, v)
		return nil
	case c == '-' || c == '+' || c >= '0' && c <= '9' || c == '.':
		v, err := p.integer()
		if err != nil {
			return err
		}
		if p.strKey {
			return p.fail("the primary key %q is VarChar, but %d is a number (quote the key)", p.pk, v)
		}
		keys.Ints = append(keys.Ints, v)
		return nil
	case c == 0:
		return p.failAt("expected a key, found the end of the expression")
	}
	return p.failAt("expected a key, found %q", p.rest())
}

func (p *exprParser) integer() (int64, error) {
	start := p.i
	if c := p.s[p.i]; c == '-' || c == '+' {
		p.i++
	}
	for p.i < len(p.s) {
		c := p.s[p.i]
		// Take every character a number might be written with, so that 1.5 and 1e3 are
		// reported as what they are rather than as a stray character after 1.
		if isIdentChar(c) || c == '.' || (c == '+' || c == '-') && p.i > start && (p.s[p.i-1] == 'e' || p.s[p.i-1] == 'E') {
			p.i++
			continue
		}
		break
	}
	tok := p.s[start:p.i]
	digits := strings.TrimLeft(tok, "+-")
	if digits == "" {
		return 0, p.fail("%q is not an integer", tok)
	}
	if strings.ContainsAny(tok, "_") {
		return 0, p.fail("%q is not an integer (no underscores in numbers)", tok)
	}
	v, err := strconv.ParseInt(tok, 0, 64)
	if errors.Is(err, strconv.ErrRange) {
		return 0, p.fail("%s is out of the Int64 range of the primary key %q", tok, p.pk)
	}
	if err != nil {
		if _, ferr := strconv.ParseFloat(tok, 64); ferr == nil || errors.Is(ferr, strconv.ErrRange) {
			return 0, p.fail("%s is not an integer, and the primary key %q is Int64", tok, p.pk)
		}
		return 0, p.fail("%q is not an integer", tok)
	}
	return v, nil
}

// str reads a quoted string with Go escapes (\n, \t, \\, \", \', \xNN, \uNNNN, ...), as
// Milvus's expression grammar does. Either quote may be escaped inside either kind.
func (p *exprParser) str(quote byte) (string, error) {
	start := p.i
	p.i++ // the opening quote
	var b strings.Builder
	for {
		if p.i >= len(p.s) {
			p.i = start
			return "", p.failAt("unterminated string")
		}
		rest := p.s[p.i:]
		switch {
		case rest[0] == quote:
			p.i++
			if !utf8.ValidString(b.String()) {
				p.i = start
				return "", p.failAt("the string is not valid UTF-8 (a \\x escape above \\x7f?)")
			}
			return b.String(), nil
		case strings.HasPrefix(rest, `\'`), strings.HasPrefix(rest, `\"`):
			b.WriteByte(rest[1])
			p.i += 2
			continue
		}
		// UnquoteChar treats the other quote as an ordinary character.
		r, multibyte, tail, err := strconv.UnquoteChar(rest, quote)
		if err != nil {
			return "", p.failAt("invalid escape in string")
		}
		// As strconv.Unquote: \xNN and octal escapes are bytes, the rest are runes.
		if r < utf8.RuneSelf || !multibyte {
			b.WriteByte(byte(r))
		} else {
			b.WriteRune(r)
		}
		p.i += len(rest) - len(tail)
	}
}
