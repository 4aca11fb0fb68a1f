//go:build unix

package engine

import "golang.org/x/sys/unix"

func mapAnon(n int) ([]byte, error) {
	return unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
}

func unmapAnon(b []byte) error { return unix.Munmap(b) }
