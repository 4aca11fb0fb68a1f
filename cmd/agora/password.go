package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// Environment variables that supply or relax the keystore password.
const (
	envPassword      = "AGORA_PASSWORD"
	envInsecureEmpty = "AGORA_INSECURE_EMPTY_PASSWORD"
)

// maxPasswordFile bounds what is read from --password-file.
const maxPasswordFile = 64 << 10

// readPassword finds the keystore password: the first line of
// --password-file, else $AGORA_PASSWORD, else a prompt on the terminal.
// confirm is for new keys: the prompt asks twice, and an empty password is
// refused unless AGORA_INSECURE_EMPTY_PASSWORD=1 (throwaway devnet keys).
// The caller should clear the returned slice when done.
func readPassword(cmd *cobra.Command, confirm bool) ([]byte, error) {
	pw, found, err := passwordFromFlagOrEnv(cmd)
	if err != nil {
		return nil, err
	}
	if !found {
		if pw, err = promptPassword(cmd, confirm); err != nil {
			return nil, err
		}
	}
	if confirm && len(pw) == 0 && os.Getenv(envInsecureEmpty) != "1" {
		return nil, usageErrorf("refusing an empty password for a new key (set %s=1 for throwaway devnet keys)", envInsecureEmpty)
	}
	return pw, nil
}

// passwordFromFlagOrEnv reads the non-interactive sources. found reports
// whether one was set, since an empty password is still a password.
func passwordFromFlagOrEnv(cmd *cobra.Command) (pw []byte, found bool, err error) {
	if path, _ := cmd.Flags().GetString(flagPasswordFile); path != "" {
		f, err := os.Open(path)
		if err != nil {
			return nil, false, usageErrorf("--%s: %v", flagPasswordFile, err)
		}
		defer f.Close()
		raw, err := io.ReadAll(io.LimitReader(f, maxPasswordFile))
		if err != nil {
			return nil, false, fmt.Errorf("read --%s: %w", flagPasswordFile, err)
		}
		// Only the first line counts, so files written by echo or an editor work.
		line, _, _ := bytes.Cut(raw, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		pw = bytes.Clone(line)
		clear(raw)
		return pw, true, nil
	}
	if v, ok := os.LookupEnv(envPassword); ok {
		return []byte(v), true, nil
	}
	return nil, false, nil
}

// promptPassword asks on the terminal, with echo off. Prompts go to stderr so
// stdout stays clean for --output json.
func promptPassword(cmd *cobra.Command, confirm bool) ([]byte, error) {
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return nil, usageError{errors.New("no keystore password: use --password-file FILE or set AGORA_PASSWORD (standard input is not a terminal to prompt on)")}
	}
	errOut := cmd.ErrOrStderr()
	label := "Keystore password: "
	if confirm {
		label = "New key password: "
	}
	fmt.Fprint(errOut, label)
	pw, err := term.ReadPassword(fd)
	fmt.Fprintln(errOut)
	if err != nil {
		return nil, fmt.Errorf("read password: %w", err)
	}
	if confirm {
		fmt.Fprint(errOut, "Repeat password: ")
		again, err := term.ReadPassword(fd)
		fmt.Fprintln(errOut)
		if err != nil {
			clear(pw)
			return nil, fmt.Errorf("read password: %w", err)
		}
		same := bytes.Equal(pw, again)
		clear(again)
		if !same {
			clear(pw)
			return nil, usageErrorf("the passwords do not match")
		}
	}
	return pw, nil
}
