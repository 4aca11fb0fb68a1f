package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/agoranet/agora/keys"
)

// lightScryptN is the scrypt cost behind --light-kdf: about a millisecond
// per unlock instead of a few hundred, for devnet scripts and tests.
const lightScryptN = 1 << 12

// maxMnemonicInput bounds what is read as a mnemonic; 24 words fit in 250 bytes.
const maxMnemonicInput = 4 << 10

func newKeysCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Create and manage coldkeys (hold funds) and hotkeys (operate neurons)",
		Long: `keys manages the encrypted keystore in <home>/keys.

A coldkey holds funds and stakes; keep it on a machine you trust. A hotkey
operates a miner or validator and is owned by a coldkey on chain; it is the
key that lives on the serving machine. Each key has its own 24-word BIP39
mnemonic, from which it can be recovered with 'agora keys import'.

Each key is one file, <home>/keys/<name>.json (mode 0600), holding the public
key and address in the clear and the mnemonic encrypted with a key derived
from your password (scrypt, XChaCha20-Poly1305). The password comes from
--password-file, else the AGORA_PASSWORD environment variable, else a prompt.`,
	}
	cmd.AddCommand(newKeysNewCmd(), newKeysListCmd(), newKeysShowCmd(), newKeysImportCmd(),
		newKeysExportCmd(), newKeysDeleteCmd(), newKeysSessionCmd())
	return cmd
}

// keysErr maps keystore errors to the CLI's exit codes.
func keysErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, keys.ErrNotFound):
		return notFoundError{err}
	case errors.Is(err, keys.ErrBadName), errors.Is(err, keys.ErrBadKind),
		errors.Is(err, keys.ErrExists), errors.Is(err, keys.ErrBadMnemonic):
		return usageError{err}
	default:
		return err
	}
}

// lookupKey opens the keystore and finds a key by name, with CLI exit codes.
func lookupKey(cmd *cobra.Command, name string) (*keys.Keystore, keys.Info, error) {
	if err := keys.ValidName(name); err != nil {
		return nil, keys.Info{}, usageError{err}
	}
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

// prepareNewKey checks the name and kind of a key about to be written and
// opens the keystore for it, all before any password prompt: typing a
// password only to hear the name is taken is a poor experience.
func prepareNewKey(cmd *cobra.Command, name, kind string, light bool) (*keys.Keystore, keys.Kind, error) {
	k, err := keys.ParseKind(kind)
	if err != nil {
		return nil, "", usageError{err}
	}
	if err := keys.ValidName(name); err != nil {
		return nil, "", usageError{err}
	}
	var opts []keys.Option
	if light {
		opts = append(opts, keys.WithScryptN(lightScryptN))
	}
	ks, err := keys.Open(filepath.Join(homeDir(cmd), "keys"), opts...)
	if err != nil {
		return nil, "", err
	}
	exists, err := ks.Exists(name)
	if err != nil {
		return nil, "", keysErr(err)
	}
	if exists {
		return nil, "", usageErrorf("key %q already exists in %s (choose another name, or 'agora keys delete %s' first)", name, ks.Dir(), name)
	}
	return ks, k, nil
}

func addNewKeyFlags(cmd *cobra.Command, kind *string, light *bool) {
	cmd.Flags().StringVar(kind, "kind", string(keys.Coldkey), "coldkey (holds funds) or hotkey (operates neurons)")
	cmd.Flags().BoolVar(light, "light-kdf", false, "encrypt with a cheap scrypt cost (N=2^12): fast, but far weaker against password guessing; for devnets and tests only")
}

// printInfo writes a key's public info as aligned text. JSON output uses
// keys.Info itself, whose fields carry their own JSON names.
func printInfo(w io.Writer, info keys.Info) error {
	_, err := fmt.Fprintf(w, "name     %s\nkind     %s\naddress  %s\npubkey   %s\n", info.Name, info.Kind, info.Address, info.PubKey)
	if err == nil && !info.CreatedAt.IsZero() {
		_, err = fmt.Fprintf(w, "created  %s\n", info.CreatedAt.UTC().Format(time.RFC3339))
	}
	return err
}

func newKeysNewCmd() *cobra.Command {
	var kind string
	var light bool
	cmd := &cobra.Command{
		Use:   "new NAME",
		Short: "Create a key with a fresh 24-word mnemonic",
		Long: `new creates a key from a fresh 24-word BIP39 mnemonic and stores it,
encrypted, as <home>/keys/NAME.json.

The mnemonic is printed once. Write it down and keep it offline: it is the
only way to recover the key if the keystore or its password is lost, and
anyone who reads it controls the key. 'agora keys export' shows it again,
given the password.

NAME is 1-64 letters, digits, '.', '_' or '-', not starting with '.'.`,
		Example: `  agora keys new alice
  agora keys new alice-hot --kind hotkey
  AGORA_PASSWORD=... agora keys new bot --output json`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			ks, k, err := prepareNewKey(cmd, name, kind, light)
			if err != nil {
				return err
			}
			pw, err := readPassword(cmd, true)
			if err != nil {
				return err
			}
			defer clear(pw)
			info, mnemonic, err := ks.Create(name, k, pw)
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
				_, err := fmt.Fprintf(w, `
Mnemonic (24 words). Write it down now and keep it offline: it is the only
way to recover this key, and anyone who sees it controls the key. It will
not be shown again.

    %s
`, mnemonic)
				return err
			})
		},
	}
	addNewKeyFlags(cmd, &kind, &light)
	return cmd
}

func newKeysListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the keys in the keystore, sorted by name",
		Long:  "list shows every key in <home>/keys with its kind and address. It needs no password.",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ks, err := openKeystore(cmd)
			if err != nil {
				return err
			}
			list, err := ks.List()
			if err != nil {
				return keysErr(err)
			}
			return printResult(cmd, list, func(w io.Writer) error {
				if len(list) == 0 {
					_, err := fmt.Fprintf(w, "no keys in %s (create one with 'agora keys new NAME')\n", ks.Dir())
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
	var addrOnly bool
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: "Show a key's kind, address and public key (no password needed)",
		Example: `  agora keys show alice
  agora keys show alice --address    # just the agora1… address, for scripts`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, info, err := lookupKey(cmd, args[0])
			if err != nil {
				return err
			}
			if addrOnly {
				return printResult(cmd, map[string]string{"address": info.Address.String()}, func(w io.Writer) error {
					_, err := fmt.Fprintln(w, info.Address)
					return err
				})
			}
			return printResult(cmd, info, func(w io.Writer) error { return printInfo(w, info) })
		},
	}
	cmd.Flags().BoolVar(&addrOnly, "address", false, "print only the address")
	return cmd
}

func newKeysImportCmd() *cobra.Command {
	var kind, mnemonicFile string
	var light bool
	cmd := &cobra.Command{
		Use:   "import NAME",
		Short: "Recover a key from its 24-word mnemonic",
		Long: `import stores the key of an existing 24-word mnemonic under NAME. The
same mnemonic always gives the same address, whatever the name or kind.

The mnemonic is read from --mnemonic-file, else from standard input: typed
at a hidden prompt on a terminal, or piped. Case and spacing do not matter;
the words and checksum are checked before anything is written. Prefer a file
or a prompt to a command-line argument, which other users can see.`,
		Example: `  agora keys import alice
  agora keys import alice-hot --kind hotkey --mnemonic-file ./alice-hot.txt`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			ks, k, err := prepareNewKey(cmd, name, kind, light)
			if err != nil {
				return err
			}
			mnemonic, err := readMnemonic(cmd, mnemonicFile)
			if err != nil {
				return err
			}
			if mnemonic, err = keys.NormalizeMnemonic(mnemonic); err != nil {
				return usageError{err}
			}
			pw, err := readPassword(cmd, true)
			if err != nil {
				return err
			}
			defer clear(pw)
			info, err := ks.Import(name, k, mnemonic, pw)
			if err != nil {
				return keysErr(err)
			}
			return printResult(cmd, info, func(w io.Writer) error { return printInfo(w, info) })
		},
	}
	addNewKeyFlags(cmd, &kind, &light)
	cmd.Flags().StringVar(&mnemonicFile, "mnemonic-file", "", "read the mnemonic from this file instead of standard input")
	return cmd
}

// readMnemonic reads a mnemonic from path, else standard input: a hidden
// prompt on a terminal (the words are a secret and should not stay in the
// scrollback), otherwise everything piped in.
func readMnemonic(cmd *cobra.Command, path string) (string, error) {
	var r io.Reader
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return "", usageErrorf("--mnemonic-file: %v", err)
		}
		defer f.Close()
		r = f
	} else {
		in := cmd.InOrStdin()
		if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			fmt.Fprint(cmd.ErrOrStderr(), "mnemonic (24 words, input hidden): ")
			line, err := term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(cmd.ErrOrStderr())
			if err != nil {
				return "", fmt.Errorf("read mnemonic: %w", err)
			}
			return string(line), nil
		}
		r = in
	}
	raw, err := io.ReadAll(io.LimitReader(r, maxMnemonicInput+1))
	if err != nil {
		return "", fmt.Errorf("read mnemonic: %w", err)
	}
	if len(raw) > maxMnemonicInput {
		return "", usageErrorf("mnemonic input is longer than %d bytes; expected 24 words", maxMnemonicInput)
	}
	if strings.TrimSpace(string(raw)) == "" {
		return "", usageErrorf("no mnemonic given: pipe it to standard input or use --mnemonic-file")
	}
	return string(raw), nil
}

func newKeysExportCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "export NAME",
		Short: "Print a key's mnemonic (needs its password)",
		Long: `export decrypts a key and prints its 24-word mnemonic, the whole secret
of the key. Anyone who sees it controls the key: mind the screen, the
terminal scrollback and where the output is redirected.`,
		Example: `  agora keys export alice
  agora keys export alice --password-file ./pw > alice.mnemonic`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ks, info, err := lookupKey(cmd, args[0])
			if err != nil {
				return err
			}
			pw, err := readPassword(cmd, false)
			if err != nil {
				return err
			}
			defer clear(pw)
			m, err := ks.Export(info.Name, pw)
			if err != nil {
				return keysErr(err)
			}
			out := struct {
				Name     string `json:"name"`
				Address  string `json:"address"`
				Mnemonic string `json:"mnemonic"`
			}{info.Name, info.Address.String(), m}
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
		Short: "Delete a key from the keystore (asks first unless --yes)",
		Long: `delete removes <home>/keys/NAME.json. Without the key's mnemonic the key
and anything it holds are gone for good, so delete asks for confirmation on
a terminal; without a terminal it refuses unless --yes is given. It needs
no password, and also removes key files that no longer parse.`,
		Example: `  agora keys delete old-hot
  agora keys delete old-hot --yes`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := keys.ValidName(name); err != nil {
				return usageError{err}
			}
			ks, err := openKeystore(cmd)
			if err != nil {
				return err
			}
			exists, err := ks.Exists(name)
			if err != nil {
				return keysErr(err)
			}
			if !exists {
				return notFoundError{fmt.Errorf("%w: %q in %s", keys.ErrNotFound, name, ks.Dir())}
			}
			// The address helps the user recognise the key; a corrupt file has none.
			what := fmt.Sprintf("key %q", name)
			addr := ""
			if info, err := ks.Get(name); err == nil {
				addr = info.Address.String()
				what = fmt.Sprintf("%s %q (%s)", info.Kind, name, addr)
			}
			if !yes {
				in, ok := cmd.InOrStdin().(*os.File)
				if !ok || !term.IsTerminal(int(in.Fd())) {
					return usageErrorf("refusing to delete %s without --yes (no terminal to confirm on)", what)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "Delete %s? Without its mnemonic it is gone for good. [y/N] ", what)
				answer, _ := bufio.NewReader(in).ReadString('\n')
				if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
					return errors.New("not deleted")
				}
			}
			if err := ks.Delete(name); err != nil {
				return keysErr(err)
			}
			out := map[string]string{"deleted": name}
			if addr != "" {
				out["address"] = addr
			}
			return printResult(cmd, out, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "deleted %s\n", what)
				return err
			})
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "delete without asking")
	return cmd
}
