// Package crashtest runs part of a test in a child process — the test binary itself,
// re-executed — and kills it with SIGKILL at a moment the test chooses, so that the
// test can check what survived. It is how the journal (and the services built on it)
// prove that an acknowledged write survives kill -9.
//
// The child role is selected by an environment variable. In the test:
//
//	func TestCrash(t *testing.T) {
//		if crashtest.Role() == "writer" {
//			runWriter() // calls crashtest.Report after each durable write; never returns
//		}
//		c := crashtest.Start(t, "writer", "DIR="+dir)
//		c.WaitReports(10, 5*time.Second)
//		acked := c.Kill()
//		// reopen and check every report in acked survived
//	}
//
// Report lines carry a prefix so that output from the testing package is ignored.
package crashtest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	envRole = "BCX_CRASHTEST_ROLE"
	prefix  = "CRASHTEST "
)

// Role is the role this process was started with, or "" in the parent test process.
func Role() string { return os.Getenv(envRole) }

// Report prints one report line to the parent. The line reaches the pipe with one
// write syscall, so once Report returns the parent will see it even if the process is
// killed immediately after.
func Report(line string) {
	if strings.ContainsRune(line, '\n') {
		panic("crashtest: report line contains a newline")
	}
	if _, err := os.Stdout.Write([]byte(prefix + line + "\n")); err != nil {
		os.Exit(3)
	}
}

// Child is a running child process.
type Child struct {
	t      testing.TB
	cmd    *exec.Cmd
	stderr lockedBuffer
	waited bool

	mu      sync.Mutex
	cond    *sync.Cond
	reports []string
	eof     bool // stdout closed: the child exited or was killed
	readErr error
	done    chan struct{}
}

// Start re-executes the test binary running only the current test, with the role and
// the extra environment variables ("K=V") set. The child is killed at test cleanup if
// still running.
func Start(t testing.TB, role string, env ...string) *Child {
	t.Helper()
	parts := strings.Split(t.Name(), "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	cmd := exec.Command(os.Args[0], "-test.run="+strings.Join(parts, "/"), "-test.count=1")
	cmd.Env = append(append(os.Environ(), envRole+"="+role), env...)
	c := &Child{t: t, cmd: cmd, done: make(chan struct{})}
	c.cond = sync.NewCond(&c.mu)
	cmd.Stderr = &c.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("crashtest: %v", err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("crashtest: start child: %v", err)
	}
	go c.read(out)
	t.Cleanup(func() {
		if !c.waited {
			_ = cmd.Process.Kill()
			<-c.done
			_ = cmd.Wait()
		}
	})
	return c
}

func (c *Child) read(out io.Reader) {
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			c.mu.Lock()
			c.reports = append(c.reports, line)
			c.cond.Broadcast()
			c.mu.Unlock()
		}
	}
	c.mu.Lock()
	c.eof, c.readErr = true, sc.Err()
	c.cond.Broadcast()
	c.mu.Unlock()
	close(c.done)
}

// WaitReports waits until the child has reported at least n lines. It fails the test
// if the child exits first or the timeout passes.
func (c *Child) WaitReports(n int, timeout time.Duration) {
	c.t.Helper()
	timer := time.AfterFunc(timeout, func() {
		c.mu.Lock()
		c.cond.Broadcast()
		c.mu.Unlock()
	})
	defer timer.Stop()
	deadline := time.Now().Add(timeout)
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.reports) < n {
		if c.eof {
			c.t.Fatalf("crashtest: child exited after %d of %d reports; stderr:\n%s", len(c.reports), n, c.stderrTail())
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("crashtest: %d of %d reports after %v; stderr:\n%s", len(c.reports), n, timeout, c.stderrTail())
		}
		c.cond.Wait()
	}
}

// Reports returns the lines reported so far.
func (c *Child) Reports() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.reports...)
}

// Kill sends SIGKILL, waits for the child to die and returns every line it reported.
// It fails the test if the child had already exited on its own.
func (c *Child) Kill() []string {
	c.t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		c.t.Fatalf("crashtest: kill: %v", err)
	}
	<-c.done
	err := c.cmd.Wait()
	c.waited = true
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		c.t.Fatalf("crashtest: child was not killed by SIGKILL (%v); stderr:\n%s", err, c.stderrTail())
	}
	if c.readErr != nil {
		c.t.Fatalf("crashtest: reading child output: %v", c.readErr)
	}
	return c.Reports()
}

func (c *Child) stderrTail() string {
	s := c.stderr.String()
	if len(s) > 4000 {
		s = "..." + s[len(s)-4000:]
	}
	return s
}

// lockedBuffer is written by exec's copying goroutine while the test may read it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Fatal ends a child after a failure in its role, with a message the parent shows.
func Fatal(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "crashtest child: "+format+"\n", args...)
	os.Exit(2)
}
