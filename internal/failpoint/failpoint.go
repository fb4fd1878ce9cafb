// Package failpoint lets tests stop Weir between two steps of a protocol, to prove that a crash
// at that point loses and duplicates nothing.
//
// A failpoint is a named place in the code (`failpoint.Hit("datanode/after-files")`). Disarmed,
// Hit costs one atomic load. Armed, it runs the action the test chose:
//
//   - in-process tests call Enable with a function, usually one that returns an error so the
//     caller abandons its work as a crashed process would;
//   - multi-process tests set WEIR_FAILPOINTS="name=exit;other=sleep(2000)" in the child's
//     environment: "exit" ends the process at once with status 137, as kill -9 would, without
//     running deferred functions or flushing anything; "sleep(ms)" pauses; "error" returns
//     ErrInjected; "error-while(path)" returns ErrInjected while the file path exists, so a test
//     can start and end an outage in a running process by creating and removing a file.
package failpoint

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrInjected is what an armed "error" failpoint returns.
var ErrInjected = errors.New("failpoint: injected failure")

var (
	armed atomic.Bool
	mu    sync.Mutex
	acts  = map[string]func() error{}
)

func init() {
	if spec := os.Getenv("WEIR_FAILPOINTS"); spec != "" {
		if err := Parse(spec); err != nil {
			fmt.Fprintln(os.Stderr, "weir:", err)
			os.Exit(2)
		}
	}
}

// Hit runs the action armed at name, if any, and returns its error.
func Hit(name string) error {
	if !armed.Load() {
		return nil
	}
	mu.Lock()
	act := acts[name]
	mu.Unlock()
	if act == nil {
		return nil
	}
	return act()
}

// Enable arms name with act until the returned function disarms it.
func Enable(name string, act func() error) (disable func()) {
	mu.Lock()
	acts[name] = act
	armed.Store(true)
	mu.Unlock()
	return func() {
		mu.Lock()
		delete(acts, name)
		armed.Store(len(acts) > 0)
		mu.Unlock()
	}
}

// Parse arms failpoints from a spec "name=action;name=action".
func Parse(spec string) error {
	for _, item := range strings.Split(spec, ";") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, action, ok := strings.Cut(item, "=")
		if !ok || name == "" {
			return fmt.Errorf("failpoint: %q: expected name=action", item)
		}
		act, err := parseAction(action)
		if err != nil {
			return fmt.Errorf("failpoint %s: %w", name, err)
		}
		Enable(name, act)
	}
	return nil
}

func parseAction(a string) (func() error, error) {
	switch {
	case a == "exit":
		return func() error { os.Exit(137); return nil }, nil
	case a == "error":
		return func() error { return ErrInjected }, nil
	case strings.HasPrefix(a, "error-while(") && strings.HasSuffix(a, ")"):
		path := a[len("error-while(") : len(a)-1]
		if path == "" {
			return nil, fmt.Errorf("bad error-while %q", a)
		}
		return func() error {
			if _, err := os.Stat(path); err == nil {
				return ErrInjected
			}
			return nil
		}, nil
	case strings.HasPrefix(a, "sleep(") && strings.HasSuffix(a, ")"):
		ms, err := strconv.Atoi(a[len("sleep(") : len(a)-1])
		if err != nil || ms < 0 {
			return nil, fmt.Errorf("bad sleep %q", a)
		}
		return func() error { time.Sleep(time.Duration(ms) * time.Millisecond); return nil }, nil
	}
	return nil, fmt.Errorf("unknown action %q (exit, error, sleep(ms))", a)
}

// HoldFirst arms name so that the first process step reaching it waits there until release is
// called (later ones pass): held is closed once one is waiting. disable disarms it, releasing
// a step still held.
func HoldFirst(name string) (held <-chan struct{}, release, disable func()) {
	h, r := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	var once sync.Once
	release = func() { once.Do(func() { close(r) }) }
	off := Enable(name, func() error {
		if first.CompareAndSwap(false, true) {
			close(h)
			<-r
		}
		return nil
	})
	return h, release, func() { release(); off() }
}
