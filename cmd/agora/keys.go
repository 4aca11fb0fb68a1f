package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/agoranet/agora/keys"
)

func newKeysCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Create and manage coldkeys (hold funds) and hotkeys (operate neurons)",
		Long: `keys manages the encrypted keystore in --home/keys: one file per key,
encrypted with scrypt and XChaCha20-Poly1305. The password comes from
--password-file, else AGORA_PASSWORD, else a prompt.`,
	}
	cmd.AddCommand(newKeysNewCmd(), newKeysListCmd(), newKeysShowCmd(), newKeysImportCmd(), newKeysExportCmd(), newKeysDeleteCmd(), newKeysSessionCmd())
	return cmd
}

// keysErr maps keystore errors to the CLI's exit codes.
func keysErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, keys.ErrNotFound):
		return notFoundError{err}
	case errors.Is(err, keys.ErrBadName), errors.Is(err, keys.ErrExists), errors.Is(err, keys.ErrBadMnemonic):
		return usageError{err}
	default:
		return err
	}
}

// lookupKey opens the keystore and finds a key by name, with CLI exit codes.
func lookupKey(cmd *cobra.Command, name string) (*keys.Keystore, keys.Info, error) {
	ks, err := openKeystore(cmd)
	if err != nil {
		return nil, keys.Info{}, err
	}
	info, err := ks.Get(name)
	if err != nil {
		return nil, keys.Info{}, keysErr(err)
	}
	return ks, info, nil
}

func addKindFlag(cmd *cobra.Command, kind *string) {
	cmd.Flags().StringVar(kind, "kind", string(keys.Coldkey), "coldkey (holds funds) or hotkey (operates neurons)")
}

func printInfo(w io.Writer, info keys.Info) error {
	_, err := fmt.Fprintf(w, "name     %s\nkind     %s\naddress  %s\npubkey   %x\n", info.Name, info.Kind, info.Address, []byte(info.PubKey))
	return err
}

func newKeysNewCmd() *cobra.Command {
	var kind string
	cmd := &cobra.Command{
		Use:   "new NAME",
		Short: "Create a key with a fresh 24-word mnemonic",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := keys.ParseKind(kind)
			if err != nil {
				return usageError{err}
			}
			if err := keys.ValidName(args[0]); err != nil {
				return usageError{err}
			}
			ks, err := openKeystore(cmd)
			if err != nil {
				return err
			}
			if _, err := ks.Get(args[0]); err == nil {
				return usageErrorf("key %q already exists", args[0])
			}
			pw, err := readPassword(cmd, true)
			if err != nil {
				return err
			}
			info, mnemonic, err := ks.Create(args[0], k, pw)
			if err != nil {
				return keysErr(err)
			}
			out := struct {
				keys.Info
				Mnemonic string `json:"mnemonic"`
			}{info, mnemonic}
			return printResult(cmd, out, func(w io.Writer) error {
				if err := printInfo(w, info); err != nil {
					return err
				}
				_, err := fmt.Fprintf(w, "\nWrite down this mnemonic and keep it offline. It is the only way to\nrecover the key, and it will not be shown again:\n\n%s\n", mnemonic)
				return err
			})
		},
	}
	addKindFlag(cmd, &kind)
	return cmd
}

func newKeysListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the keys in the keystore",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ks, err := openKeystore(cmd)
			if err != nil {
				return err
			}
			list, err := ks.List()
			if err != nil {
				return err
			}
			if list == nil {
				list = []keys.Info{}
			}
			return printResult(cmd, list, func(w io.Writer) error {
				if len(list) == 0 {
					_, err := fmt.Fprintln(w, "no keys yet (create one with 'agora keys new NAME')")
					return err
				}
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tKIND\tADDRESS")
				for _, k := range list {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", k.Name, k.Kind, k.Address)
				}
				return tw.Flush()
			})
		},
	}
}

func newKeysShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: "Show a key's address and public key (no password needed)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, info, err := lookupKey(cmd, args[0])
			if err != nil {
				return err
			}
			return printResult(cmd, info, func(w io.Writer) error { return printInfo(w, info) })
		},
	}
}

func newKeysImportCmd() *cobra.Command {
	var kind, mnemonicFile string
	cmd := &cobra.Command{
		Use:   "import NAME",
		Short: "Store the key of an existing mnemonic (from --mnemonic-file, else standard input)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := keys.ParseKind(kind)
			if err != nil {
				return usageError{err}
			}
			mnemonic, err := readMnemonic(cmd, mnemonicFile)
			if err != nil {
				return err
			}
			ks, err := openKeystore(cmd)
			if err != nil {
				return err
			}
			pw, err := readPassword(cmd, true)
			if err != nil {
				return err
			}
			info, err := ks.Import(args[0], k, mnemonic, pw)
			if err != nil {
				return keysErr(err)
			}
			return printResult(cmd, info, func(w io.Writer) error { return printInfo(w, info) })
		},
	}
	addKindFlag(cmd, &kind)
	cmd.Flags().StringVar(&mnemonicFile, "mnemonic-file", "", "read the mnemonic from this file")
	return cmd
}

func readMnemonic(cmd *cobra.Command, path string) (string, error) {
	if path != "" {
		raw, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("read --mnemonic-file: %w", err)
		}
		return string(raw), nil
	}
	in := cmd.InOrStdin()
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(cmd.ErrOrStderr(), "mnemonic: ")
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && line == "" {
		return "", usageErrorf("no mnemonic on standard input (or use --mnemonic-file)")
	}
	return strings.TrimSpace(line), nil
}

func newKeysExportCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "export NAME",
		Short: "Print a key's mnemonic (needs its password)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ks, _, err := lookupKey(cmd, args[0])
			if err != nil {
				return err
			}
			pw, err := readPassword(cmd, false)
			if err != nil {
				return err
			}
			m, err := ks.Export(args[0], pw)
			if err != nil {
				return keysErr(err)
			}
			out := map[string]string{"name": args[0], "mnemonic": m}
			return printResult(cmd, out, func(w io.Writer) error {
				_, err := fmt.Fprintln(w, m)
				return err
			})
		},
	}
}

func newKeysDeleteCmd() *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a key file (asks first unless --yes)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ks, info, err := lookupKey(cmd, args[0])
			if err != nil {
				return err
			}
			if !yes {
				f, ok := cmd.InOrStdin().(*os.File)
				if !ok || !term.IsTerminal(int(f.Fd())) {
					return usageErrorf("refusing to delete %q without --yes (no terminal to confirm on)", args[0])
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "delete key %q (%s)? Without its mnemonic it is gone for good. [y/N] ", info.Name, info.Address)
				answer, _ := bufio.NewReader(f).ReadString('\n')
				if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
					return errors.New("not deleted")
				}
			}
			if err := ks.Delete(args[0]); err != nil {
				return keysErr(err)
			}
			return printResult(cmd, map[string]string{"deleted": args[0]}, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "deleted %s\n", args[0])
				return err
			})
		},
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation")
	return cmd
}
