package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// readPassword finds the keystore password: --password-file, else
// AGORA_PASSWORD, else a prompt on the terminal. confirm asks twice and
// refuses empty passwords (for new keys) unless AGORA_INSECURE_EMPTY_PASSWORD=1.
func readPassword(cmd *cobra.Command, confirm bool) ([]byte, error) {
	pw, err := passwordFromFlagOrEnv(cmd)
	if err != nil {
		return nil, err
	}
	if pw == nil {
		pw, err = promptPassword(confirm)
		if err != nil {
			return nil, err
		}
	}
	if confirm && len(pw) == 0 && os.Getenv("AGORA_INSECURE_EMPTY_PASSWORD") != "1" {
		return nil, usageErrorf("refusing an empty keystore password (set AGORA_INSECURE_EMPTY_PASSWORD=1 for throwaway keys)")
	}
	return pw, nil
}

func passwordFromFlagOrEnv(cmd *cobra.Command) ([]byte, error) {
	if path, _ := cmd.Flags().GetString(flagPasswordFile); path != "" {
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read --password-file: %w", err)
		}
		line, _, _ := bytes.Cut(raw, []byte("\n"))
		return bytes.TrimSuffix(line, []byte("\r")), nil
	}
	if pw, ok := os.LookupEnv("AGORA_PASSWORD"); ok {
		return []byte(pw), nil
	}
	return nil, nil
}

func promptPassword(confirm bool) ([]byte, error) {
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return nil, usageError{errors.New("no keystore password: pass --password-file FILE or set AGORA_PASSWORD (no terminal to prompt on)")}
	}
	fmt.Fprint(os.Stderr, "keystore password: ")
	pw, err := term.ReadPassword(fd)
	fmt.Fprintln(os.Stderr)
	if err != nil {
		return nil, fmt.Errorf("read password: %w", err)
	}
	if confirm {
		fmt.Fprint(os.Stderr, "repeat password: ")
		again, err := term.ReadPassword(fd)
		fmt.Fprintln(os.Stderr)
		if err != nil {
			return nil, fmt.Errorf("read password: %w", err)
		}
		if !bytes.Equal(pw, again) {
			return nil, usageErrorf("passwords do not match")
		}
	}
	return pw, nil
}
