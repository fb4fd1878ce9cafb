package vindex

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/weir-db/weir/internal/vsearch"
)

// Milvus 2.6's parameters, defaults and ranges (knowhere 2.6's configs; see
// docs/research/milvus-2.6-index-params.md): the texts below are knowhere's, which Milvus
// returns inside its "invalid parameter" status.
const (
	DefaultM              = 30
	DefaultEfConstruction = 360
	DefaultNlist          = 128
	DefaultNprobe         = 8
	// MinEf is the beam a search without ef gets at least (knowhere: ef = max(k, 16)).
	MinEf = 16
	// DefaultRefineK is IVF_SQ8's refine factor: the best refine·k rows by their codes are
	// scored again on their values (Weir's; Milvus's IVF_SQ8 does not refine).
	DefaultRefineK = 4

	// AUTOINDEX on CPU, as open-source Milvus 2.6 maps it (autoIndex.params.build).
	AutoM              = 18
	AutoEfConstruction = 240
	// AutoEf is an AUTOINDEX search's beam when the request names no ef: Milvus's max(k, 16)
	// leaves recall@10 near 0.8 on clustered 32-dim data, where 64 reaches 0.99 (Weir's choice:
	// an index the user did not tune should answer well; ef still overrides it).
	AutoEf = 64

	maxInt32 = math.MaxInt32
)

// DefaultMetric is the metric of a float vector index that names none (Milvus 2.6: COSINE).
const DefaultMetric = vsearch.COSINE

// Parameter keys.
const (
	KeyIndexType  = "index_type"
	KeyMetricType = "metric_type"
)

// Flatten returns params with the entries of its "params" JSON object as keys of their own, as
// Milvus reads an index's parameters (the request's checks, with Milvus's texts for a malformed
// object or a repeated key, are the API's).
func Flatten(params map[string]string) map[string]string {
	raw, ok := params["params"]
	if !ok {
		return params
	}
	out := map[string]string{}
	for k, v := range params {
		if k != "params" {
			out[k] = v
		}
	}
	var m map[string]any
	d := json.NewDecoder(strings.NewReader(raw))
	d.UseNumber() // numbers as written: 1000000 stays 1000000, not 1e+06
	if d.Decode(&m) == nil {
		for k, v := range m {
			out[k] = fmt.Sprintf("%v", v)
		}
	}
	return out
}

// ParseBuild reads an index definition's flattened parameters (Milvus's keys, string values)
// into the spec its builds use: AUTOINDEX and an absent type become HNSW with Milvus's CPU
// parameters, absent values take Milvus's defaults, and the first parameter out of its range is
// an error with knowhere's text. Unknown keys are ignored, as knowhere ignores them.
func ParseBuild(params map[string]string) (Spec, error) {
	s := Spec{Type: Type(params[KeyIndexType]), Metric: vsearch.Metric(strings.ToUpper(params[KeyMetricType]))}
	if s.Metric == "" {
		s.Metric = DefaultMetric
	}
	if _, err := vsearch.ParseMetric(string(s.Metric)); err != nil {
		return Spec{}, fmt.Errorf("metric type %s not found or not supported, supported: [L2 IP COSINE]", params[KeyMetricType])
	}
	var err error
	switch s.Type {
	case "", Auto:
		s.Type, s.M, s.EfConstruction, s.Auto = HNSW, AutoM, AutoEfConstruction, true
	case HNSW:
		if _, ok := params["refine"]; ok && strings.EqualFold(params["refine"], "true") {
			return Spec{}, fmt.Errorf("refine is not supported for this index")
		}
		if _, ok := params["refine_type"]; ok {
			return Spec{}, fmt.Errorf("refine is not supported for this index")
		}
		if s.M, err = intParam(params, "M", DefaultM, 2, 2048); err != nil {
			return Spec{}, err
		}
		if s.EfConstruction, err = intParam(params, "efConstruction", DefaultEfConstruction, 1, maxInt32); err != nil {
			return Spec{}, err
		}
	case IVFFlat, IVFSQ8:
		if s.Nlist, err = intParam(params, "nlist", DefaultNlist, 1, 65536); err != nil {
			return Spec{}, err
		}
	case Flat:
	default:
		return Spec{}, fmt.Errorf("invalid index type: %s", s.Type)
	}
	return s, nil
}

// intParam reads an integer parameter as knowhere does: a missing one takes def; a value that is
// not a number, has a fractional or trailing part, or lies outside [lo, hi] is refused.
func intParam(params map[string]string, key string, def, lo, hi int) (int, error) {
	v, ok := params[key]
	if !ok {
		return def, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		if f, ferr := strconv.ParseFloat(strings.TrimSpace(v), 64); ferr == nil && !math.IsNaN(f) || leadingDigits(v) {
			return 0, fmt.Errorf("wrong data type in json, key: '%s', value: '%s'", key, v)
		}
		return 0, fmt.Errorf("invalid integer value, key: '%s', value: '%s'", key, v)
	}
	if n < math.MinInt32 || n > math.MaxInt32 {
		return 0, fmt.Errorf("integer value out of range, key: '%s', value: '%s'", key, v)
	}
	if int(n) < lo || int(n) > hi {
		return 0, fmt.Errorf("Out of range in json: param '%s' (%d) should be in range [%d, %d]", key, n, lo, hi)
	}
	return int(n), nil
}

func leadingDigits(v string) bool {
	v = strings.TrimLeft(strings.TrimSpace(v), "+-")
	return v != "" && v[0] >= '0' && v[0] <= '9'
}

// ParseSearch reads a search's parameters (the "params" object of its search_params, JSON types
// kept, as Milvus passes them to knowhere) for an index of spec and a top k: HNSW's ef (at least
// k; max(k, MinEf) when absent), IVF's nprobe (the default 8; more than nlist is nlist), and
// Weir's refine_k for IVF_SQ8. The texts are knowhere's.
func ParseSearch(spec Spec, params map[string]any, k int) (SearchParams, error) {
	var sp SearchParams
	var err error
	switch spec.Type {
	case HNSW:
		ef, ok, err := jsonInt(params, "ef", 1, maxInt32)
		if err != nil {
			return sp, err
		}
		if !ok {
			ef = max(k, MinEf)
			if spec.Auto {
				ef = max(k, AutoEf)
			}
		}
		if ef < k {
			return sp, fmt.Errorf("ef(%d) should be larger than k(%d)", ef, k)
		}
		sp.Ef = ef
	case IVFFlat, IVFSQ8:
		np, ok, err := jsonInt(params, "nprobe", 1, 65536)
		if err != nil {
			return sp, err
		}
		if !ok {
			np = DefaultNprobe
		}
		sp.Nprobe = min(np, max(spec.Nlist, 1))
		if spec.Type == IVFSQ8 {
			if sp.RefineK, ok, err = jsonInt(params, "refine_k", 1, 1024); err != nil {
				return sp, err
			} else if !ok {
				sp.RefineK = DefaultRefineK
			}
		}
	}
	return sp, err
}

// jsonInt reads an integer of a JSON object as knowhere does: a number without a fraction, or a
// string holding one.
func jsonInt(params map[string]any, key string, lo, hi int) (int, bool, error) {
	v, ok := params[key]
	if !ok {
		return 0, false, nil
	}
	var n int64
	switch x := v.(type) {
	case float64:
		if x != math.Trunc(x) || math.IsInf(x, 0) {
			return 0, true, fmt.Errorf("Type conflict in json: param '%s' (%s) should be integer", key, jsonText(x))
		}
		if x < math.MinInt32 || x > math.MaxInt32 {
			return 0, true, fmt.Errorf("Out of range in json: param '%s' (%s) should be in range [%d, %d]", key, jsonText(x), lo, hi)
		}
		n = int64(x)
	case json.Number:
		i, err := x.Int64()
		if err != nil { // 64.0, 1e3, or past int64: JSON floats, which knowhere refuses
			return 0, true, fmt.Errorf("Type conflict in json: param '%s' (%s) should be integer", key, x)
		}
		n = i
	case string:
		i, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			return 0, true, fmt.Errorf("invalid integer value, key: '%s', value: '%s'", key, x)
		}
		n = i
	default:
		return 0, true, fmt.Errorf("Type conflict in json: param '%s' (%s) should be integer", key, jsonText(x))
	}
	if n < int64(lo) || n > int64(hi) {
		return 0, true, fmt.Errorf("Out of range in json: param '%s' (%d) should be in range [%d, %d]", key, n, lo, hi)
	}
	return int(n), true, nil
}

func jsonText(v any) string {
	if f, ok := v.(float64); ok && f == math.Trunc(f) {
		return strconv.FormatFloat(f, 'f', 1, 64)
	}
	b, _ := json.Marshal(v)
	return string(b)
}
