//go:build !linux

package main

import "syscall"

// sysProcAttr returns nil: the driver measures CPU from /proc and so runs
// on Linux only; elsewhere it builds but fails at its first measurement.
func sysProcAttr() *syscall.SysProcAttr { return nil }
