package depcheck

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const module = "github.com/weir-db/weir/internal/"

// deps returns the Weir packages pkg imports, directly or not.
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", module+pkg).Output()
	require.NoError(t, err, "go list %s", pkg)
	var weir []string
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, module) && p != module+pkg {
			weir = append(weir, strings.TrimPrefix(p, module))
		}
	}
	return weir
}

// TestDependencyRules checks the rules of the brief that a lint can: no coordinator on the
// write path (datanode, proxy) or the read path (querynode, readapi: R6); metastore, wal and
// objstore know no Weir types; segment knows no storage backend.
func TestDependencyRules(t *testing.T) {
	for _, pkg := range []string{"datanode", "proxy", "querynode", "readapi"} {
		require.NotContains(t, deps(t, pkg), "coord", "%s imports the coordinator", pkg)
	}
	for _, pkg := range []string{"metastore", "wal", "objstore"} {
		require.Empty(t, deps(t, pkg), "%s imports Weir packages", pkg)
	}
	require.NotContains(t, deps(t, "segment"), "objstore", "segment knows a storage backend")
}
