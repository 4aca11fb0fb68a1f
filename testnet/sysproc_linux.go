//go:build linux

package testnet

import "syscall"

// childAttr puts a node in its own process group (so a signal to the
// testnet's terminal does not reach it twice) and has the kernel kill it if
// the testnet process dies first, so a killed testnet leaves no orphans.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
