// Command agora is the single binary of the Agora network: chain node, devnet,
// keys, transactions, queries, miner, validator (with its paid gateway) and a
// paying chat client.
//
// It is a thin layer over the libraries: commands parse flags, unlock keys
// and print. Transaction commands are declared as txSpec values sharing one
// send path; messages come from chain/tx's constructors; services are built
// by the constructors their packages own (miner.Enrollment, validator.New,
// gateway.NewService, devnet.Start), the same ones the devnet uses; the
// benchmark harnesses live in package bench and the Yuma simulator in
// package sim, each returning a result struct this command prints.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes. Scripts branch on them, so they are part of the CLI contract.
const (
	exitOK       = 0
	exitError    = 1 // the command ran and failed (network, chain rejected the tx, …)
	exitUsage    = 2 // the command line itself is wrong
	exitNotFound = 3 // the thing asked for does not exist (key, account, tx)
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd()
	err := root.ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(exitCode(err))
	}
}

// usageError marks errors caused by the command line rather than the world.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// notFoundError marks a lookup that found nothing.
type notFoundError struct{ err error }

func (e notFoundError) Error() string { return e.err.Error() }
func (e notFoundError) Unwrap() error { return e.err }

func exitCode(err error) int {
	var u usageError
	var nf notFoundError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &u):
		return exitUsage
	case errors.As(err, &nf):
		return exitNotFound
	default:
		return exitError
	}
}
