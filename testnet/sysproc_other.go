//go:build !linux

package testnet

import "syscall"

// childAttr keeps a node in its own process group; without Linux's
// Pdeathsig, a testnet killed with SIGKILL can leave its nodes running.
func childAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
