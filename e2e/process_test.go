package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// process is a started binary whose stdout is scanned for start-up lines
// and whose stderr is kept for failure reports.
type process struct {
	name   string
	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr strings.Builder
	lines  chan string // stdout lines, until the process closes stdout
	done   chan struct{}
	err    error // set before done is closed
}

// start runs bin with args and env (added to the environment).
func start(name, bin string, env []string, args ...string) (*process, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p := &process{name: name, cmd: cmd, lines: make(chan string, 256), done: make(chan struct{})}
	cmd.Stderr = lockedWriter{p}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case p.lines <- sc.Text():
			default: // nobody is reading start-up lines any more
			}
		}
		close(p.lines)
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

type lockedWriter struct{ p *process }

func (w lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.stderr.Write(b)
}

func (p *process) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// await reads stdout lines until every pattern has matched once, returning
// the first submatch of each, or fails after timeout.
func (p *process) await(timeout time.Duration, patterns ...*regexp.Regexp) ([]string, error) {
	found := make([]string, len(patterns))
	left := len(patterns)
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for left > 0 {
		select {
		case line, ok := <-p.lines:
			if !ok {
				return nil, fmt.Errorf("%s exited before starting:\n%s", p.name, p.logs())
			}
			for i, re := range patterns {
				if m := re.FindStringSubmatch(line); m != nil && found[i] == "" {
					found[i] = m[1]
					left--
				}
			}
		case <-deadline.C:
			return nil, fmt.Errorf("%s did not start within %v:\n%s", p.name, timeout, p.logs())
		}
	}
	return found, nil
}

// signal sends sig and waits for the process to exit, returning its exit
// code.
func (p *process) stop(sig syscall.Signal, timeout time.Duration) (int, error) {
	if err := p.cmd.Process.Signal(sig); err != nil {
		return -1, err
	}
	return p.wait(timeout)
}

func (p *process) wait(timeout time.Duration) (int, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode(), nil
	case <-t.C:
		_ = p.cmd.Process.Kill()
		<-p.done
		return -1, fmt.Errorf("%s did not exit within %v", p.name, timeout)
	}
}

// kill ends the process if it is still running.
func (p *process) kill() {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// buildBinaries compiles the gateway and demo commands into dir.
func buildBinaries(ctx context.Context, dir string) (gateway, demo string, err error) {
	gateway, demo = filepath.Join(dir, "gateway"), filepath.Join(dir, "demo")
	for bin, pkg := range map[string]string{gateway: "./cmd/gateway", demo: "./cmd/demo"} {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg)
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", "", fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	return gateway, demo, nil
}

var _ io.Writer = lockedWriter{}
