package failpoint

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestEnableAndDisable(t *testing.T) {
	require.NoError(t, Hit("x"))
	boom := errors.New("boom")
	off := Enable("x", func() error { return boom })
	require.ErrorIs(t, Hit("x"), boom)
	require.NoError(t, Hit("y"))
	off()
	require.NoError(t, Hit("x"))
	require.False(t, armed.Load())
}

func TestParse(t *testing.T) {
	require.NoError(t, Parse("a=error; b=sleep(20) ;"))
	defer func() { Enable("a", nil)(); Enable("b", nil)() }()
	require.ErrorIs(t, Hit("a"), ErrInjected)
	t0 := time.Now()
	require.NoError(t, Hit("b"))
	require.GreaterOrEqual(t, time.Since(t0), 20*time.Millisecond)
	flag := filepath.Join(t.TempDir(), "down")
	require.NoError(t, Parse("c=error-while("+flag+")"))
	defer func() { Enable("c", nil)() }()
	require.NoError(t, Hit("c"))
	require.NoError(t, os.WriteFile(flag, nil, 0o644))
	require.ErrorIs(t, Hit("c"), ErrInjected)
	require.NoError(t, os.Remove(flag))
	require.NoError(t, Hit("c"))
	for _, bad := range []string{"a", "=error", "a=explode", "a=sleep(x)", "a=sleep(-1)", "a=error-while()"} {
		require.Error(t, Parse(bad), bad)
	}
}

// TestExitFromEnvironment runs this test binary as a child with WEIR_FAILPOINTS set and checks
// that an armed "exit" ends it with status 137 at the failpoint.
func TestExitFromEnvironment(t *testing.T) {
	if os.Getenv("FAILPOINT_CHILD") == "1" {
		_ = Hit("die")
		os.Exit(0) // not reached when armed
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestExitFromEnvironment$")
	cmd.Env = append(os.Environ(), "FAILPOINT_CHILD=1", "WEIR_FAILPOINTS=die=exit")
	err := cmd.Run()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, 137, ee.ExitCode())
}
