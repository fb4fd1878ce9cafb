package main

import (
	"fmt"
	"os"

	"github.com/goccy/go-yaml"
)

// readConfigFile reads a flat YAML mapping of flag names to scalar values.
func readConfigFile(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		switch v.(type) {
		case map[string]any, []any:
			return nil, fmt.Errorf("config %s: key %q: expected a scalar value", path, k)
		case nil:
			return nil, fmt.Errorf("config %s: key %q has no value", path, k)
		}
		out[k] = fmt.Sprint(v)
	}
	return out, nil
}
