package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// stopTimeout is how long a child gets to exit after SIGTERM before it is
// killed.
const stopTimeout = 5 * time.Second

// child is a started process: its stdout is scanned for the line that
// says where it listens, its stderr goes to a log file.
type child struct {
	name  string
	cmd   *exec.Cmd
	log   string      // path of the stderr file
	lines chan string // stdout lines, until the process closes stdout
	done  chan struct{}
	err   error // the exit status, set before done is closed
}

// startChild runs bin with args, with env added to the driver's
// environment minus the variables that would change what is measured
// (see childEnv). Its stderr goes to dir/name.log.
func startChild(dir, name, bin string, env []string, args ...string) (*child, error) {
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child has its own descriptor
	cmd := exec.Command(bin, args...)
	cmd.Env = append(childEnv(os.Environ()), env...)
	cmd.Stderr = logFile
	cmd.SysProcAttr = sysProcAttr()
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, log: logPath, lines: make(chan string, 64), done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case c.lines <- sc.Text():
			default: // nobody is waiting for start-up lines any more
			}
		}
		close(c.lines)
		c.err = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

// childEnv is env without the variables that would turn tracing on, point
// the gateway elsewhere or change its cache: each child gets exactly the
// ones the driver sets.
func childEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "OTEL_") || strings.HasPrefix(k, "BRAID_") || k == roleEnv ||
			strings.HasSuffix(k, "_URL") || k == "GOMEMLIMIT" || k == "GOGC" {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// await waits for a stdout line matching re and returns its first
// submatch; it fails if the child exits first or timeout passes.
func (c *child) await(ctx context.Context, timeout time.Duration, re *regexp.Regexp) (string, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				<-c.done
				return "", fmt.Errorf("%s exited before it was ready (%v); its log:\n%s", c.name, c.err, c.tail())
			}
			if m := re.FindStringSubmatch(line); m != nil {
				return m[1], nil
			}
		case <-t.C:
			return "", fmt.Errorf("%s did not start within %v; its log:\n%s", c.name, timeout, c.tail())
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

// tail returns the end of the child's log.
func (c *child) tail() string {
	b, _ := os.ReadFile(c.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// stop sends SIGTERM, waits up to stopTimeout, then kills, and waits for
// the process and its stdout reader to end.
func (c *child) stop() {
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(stopTimeout)
	defer t.Stop()
	select {
	case <-c.done:
	case <-t.C:
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// pid is the child's process id.
func (c *child) pid() int { return c.cmd.Process.Pid }

// build compiles the package pkg of this module into dir/name.
func build(ctx context.Context, dir, name, pkg string) (string, error) {
	bin := filepath.Join(dir, name)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin, nil
}

// clockTicks returns the kernel's clock ticks per second (getconf
// CLK_TCK), the unit of /proc/PID/stat's times; 100 if getconf fails,
// which is what Linux uses on every common architecture.
func clockTicks() (int64, bool) {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err != nil {
		return 100, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil || n <= 0 {
		return 100, false
	}
	return n, true
}

// cpuTicks returns utime+stime of process pid from /proc/PID/stat, in
// clock ticks.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// count fields after the last ')'. utime and stime are fields 14 and
	// 15, so the 12th and 13th after it.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[i+1:])
	if i < 0 || len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return utime + stime, nil
}
