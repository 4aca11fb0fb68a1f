package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/term"

	"github.com/agoranet/agora/keys"
)

// keysCLI runs agora with args against home, feeding stdin, and returns
// stdout, stderr, the error and its exit code.
func keysCLI(t *testing.T, home, stdin string, args ...string) (string, string, error, int) {
	t.Helper()
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(append(args, "--home", home))
	err := root.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err, exitCode(err)
}

type cliKey struct {
	Name      string `json:"name"`
	Kind      string `json:"kind"`
	Address   string `json:"address"`
	PubKey    string `json:"pubkey"`
	CreatedAt string `json:"created_at"`
	Mnemonic  string `json:"mnemonic"`
}

func decodeJSON[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, s)
	}
	return v
}

func TestKeysCLILifecycle(t *testing.T) {
	home := t.TempDir()
	t.Setenv(envPassword, "pw-for-tests")
	t.Setenv(envInsecureEmpty, "")
	run := func(stdin string, args ...string) (string, int) {
		t.Helper()
		out, errOut, err, code := keysCLI(t, home, stdin, args...)
		if err != nil {
			t.Logf("agora %s: %v (stderr %q)", strings.Join(args, " "), err, errOut)
		}
		return out, code
	}
	mustRun := func(stdin string, args ...string) string {
		t.Helper()
		out, code := run(stdin, args...)
		if code != exitOK {
			t.Fatalf("agora %s: exit %d", strings.Join(args, " "), code)
		}
		return out
	}

	// new, JSON: the only output that carries the mnemonic besides export.
	alice := decodeJSON[cliKey](t, mustRun("", "keys", "new", "alice", "--light-kdf", "--output", "json"))
	if alice.Name != "alice" || alice.Kind != "coldkey" || !strings.HasPrefix(alice.Address, "agora1") ||
		len(alice.PubKey) != 64 || alice.CreatedAt == "" || len(strings.Fields(alice.Mnemonic)) != 24 {
		t.Fatalf("keys new: %+v", alice)
	}
	priv, err := keys.PrivKeyFromMnemonic(alice.Mnemonic, "")
	if err != nil {
		t.Fatal(err)
	}
	// new, text, hotkey, default (strong) KDF: prints address, mnemonic and a warning.
	out := mustRun("", "keys", "new", "hot1", "--kind", "hotkey")
	for _, want := range []string{"hot1", "hotkey", "agora1", "Write it down", "will\nnot be shown again"} {
		if !strings.Contains(out, want) {
			t.Errorf("keys new text output lacks %q:\n%s", want, out)
		}
	}
	if kdfN(t, home, "hot1") != keys.DefaultScryptN || kdfN(t, home, "alice") != lightScryptN {
		t.Errorf("scrypt N: hot1 %d, alice %d", kdfN(t, home, "hot1"), kdfN(t, home, "alice"))
	}

	// list: sorted, JSON and text.
	list := decodeJSON[[]cliKey](t, mustRun("", "keys", "list", "--output", "json"))
	if len(list) != 2 || list[0].Name != "alice" || list[1].Name != "hot1" || list[1].Kind != "hotkey" || list[0].Mnemonic != "" {
		t.Fatalf("keys list: %+v", list)
	}
	if out := mustRun("", "keys", "list"); !strings.Contains(out, "NAME") || !strings.Contains(out, alice.Address) {
		t.Fatalf("keys list text:\n%s", out)
	}

	// show needs no password.
	t.Setenv(envPassword, "")
	os.Unsetenv(envPassword)
	shown := decodeJSON[cliKey](t, mustRun("", "keys", "show", "alice", "-o", "json"))
	if shown.Address != alice.Address || shown.PubKey != alice.PubKey || shown.Mnemonic != "" {
		t.Fatalf("keys show: %+v", shown)
	}
	if pub := priv.Public().(ed25519.PublicKey); shown.PubKey != keys.HexBytes(pub).String() {
		t.Fatalf("shown pubkey %s is not the mnemonic's", shown.PubKey)
	}
	if out := mustRun("", "keys", "show", "alice", "--address"); out != alice.Address+"\n" {
		t.Fatalf("keys show --address: %q", out)
	}
	t.Setenv(envPassword, "pw-for-tests")

	// export gives the mnemonic back.
	if out := mustRun("", "keys", "export", "alice"); out != alice.Mnemonic+"\n" {
		t.Fatalf("keys export: %q", out)
	}
	exp := decodeJSON[cliKey](t, mustRun("", "keys", "export", "alice", "--output", "json"))
	if exp.Mnemonic != alice.Mnemonic || exp.Address != alice.Address {
		t.Fatalf("keys export json: %+v", exp)
	}

	// import from a file and from stdin (messy) gives the same address.
	mf := filepath.Join(t.TempDir(), "m.txt")
	if err := os.WriteFile(mf, []byte(alice.Mnemonic+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	imp := decodeJSON[cliKey](t, mustRun("", "keys", "import", "alice2", "--mnemonic-file", mf, "--light-kdf", "-o", "json"))
	if imp.Address != alice.Address || imp.Kind != "coldkey" || imp.Mnemonic != "" {
		t.Fatalf("keys import (file): %+v", imp)
	}
	messy := "  " + strings.ToUpper(strings.ReplaceAll(alice.Mnemonic, " ", "\n")) + "\n"
	imp = decodeJSON[cliKey](t, mustRun(messy, "keys", "import", "alice3", "--kind", "hotkey", "--light-kdf", "-o", "json"))
	if imp.Address != alice.Address || imp.Kind != "hotkey" {
		t.Fatalf("keys import (stdin): %+v", imp)
	}
	if out := mustRun("", "keys", "export", "alice3"); out != alice.Mnemonic+"\n" {
		t.Fatalf("export of imported key: %q", out)
	}

	// A wrong password is an ordinary failure, and says so.
	pwFile := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pwFile, []byte("wrong\n"), 0o600)
	_, _, err, code := keysCLI(t, home, "", "keys", "export", "alice", "--password-file", pwFile)
	if code != exitError || !errors.Is(err, keys.ErrWrongPassword) {
		t.Fatalf("wrong password: exit %d, %v", code, err)
	}

	// delete: refused without --yes when there is no terminal, then done.
	if _, code := run("y\n", "keys", "delete", "alice"); code != exitUsage {
		t.Fatalf("delete without --yes: exit %d, want %d", code, exitUsage)
	}
	del := decodeJSON[map[string]string](t, mustRun("", "keys", "delete", "alice", "--yes", "-o", "json"))
	if del["deleted"] != "alice" || del["address"] != alice.Address {
		t.Fatalf("keys delete: %v", del)
	}
	if _, code := run("", "keys", "show", "alice"); code != exitNotFound {
		t.Fatalf("show after delete: exit %d", code)
	}
	list = decodeJSON[[]cliKey](t, mustRun("", "keys", "list", "-o", "json"))
	if len(list) != 3 || list[0].Name != "alice2" {
		t.Fatalf("list after delete: %+v", list)
	}
}

// kdfN reads the scrypt cost from a key file.
func kdfN(t *testing.T, home, name string) int {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(home, "keys", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		KDF struct{ N int } `json:"kdf"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	return f.KDF.N
}

func TestKeysCLIExitCodes(t *testing.T) {
	home := t.TempDir()
	t.Setenv(envPassword, "pw")
	t.Setenv(envInsecureEmpty, "")
	if _, _, err, _ := keysCLI(t, home, "", "keys", "new", "taken", "--light-kdf"); err != nil {
		t.Fatal(err)
	}
	bad := strings.Repeat("abandon ", 24)
	cases := []struct {
		name  string
		stdin string
		args  []string
		want  int
	}{
		{"show missing", "", []string{"keys", "show", "nobody"}, exitNotFound},
		{"export missing", "", []string{"keys", "export", "nobody"}, exitNotFound},
		{"delete missing", "", []string{"keys", "delete", "nobody", "--yes"}, exitNotFound},
		{"new existing", "", []string{"keys", "new", "taken", "--light-kdf"}, exitUsage},
		{"import existing", "", []string{"keys", "import", "taken", "--light-kdf"}, exitUsage},
		{"path traversal", "", []string{"keys", "new", "../evil", "--light-kdf"}, exitUsage},
		{"hidden name", "", []string{"keys", "show", ".hidden"}, exitUsage},
		{"bad kind", "", []string{"keys", "new", "x", "--kind", "warmkey"}, exitUsage},
		{"bad mnemonic", bad, []string{"keys", "import", "y", "--light-kdf"}, exitUsage},
		{"no mnemonic", "", []string{"keys", "import", "y", "--light-kdf"}, exitUsage},
		{"missing mnemonic file", "", []string{"keys", "import", "y", "--mnemonic-file", "/nonexistent/m"}, exitUsage},
		{"missing password file", "", []string{"keys", "export", "taken", "--password-file", "/nonexistent/pw"}, exitUsage},
		{"two args", "", []string{"keys", "show", "a", "b"}, exitUsage},
		{"no args", "", []string{"keys", "new"}, exitUsage},
		{"bad output", "", []string{"keys", "list", "--output", "yaml"}, exitUsage},
		{"unknown flag", "", []string{"keys", "list", "--frobnicate"}, exitUsage},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, _, err, code := keysCLI(t, home, c.stdin, c.args...); code != c.want {
				t.Fatalf("agora %v: exit %d (%v), want %d", c.args, code, err, c.want)
			}
		})
	}
	// Nothing above left a key behind.
	if _, err := os.Stat(filepath.Join(home, "keys", "y.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("failed import left a file: %v", err)
	}
}

func TestKeysCLIPasswordSources(t *testing.T) {
	home := t.TempDir()
	t.Setenv(envInsecureEmpty, "")

	// --password-file: first line only, CRLF tolerated; it wins over the env.
	pwFile := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pwFile, []byte("s3cret\r\nsecond line ignored\n"), 0o600)
	t.Setenv(envPassword, "not-this-one")
	if _, _, err, _ := keysCLI(t, home, "", "keys", "new", "filekey", "--light-kdf", "--password-file", pwFile); err != nil {
		t.Fatal(err)
	}
	t.Setenv(envPassword, "s3cret")
	if _, _, err, _ := keysCLI(t, home, "", "keys", "export", "filekey"); err != nil {
		t.Fatalf("password from file was not the first line: %v", err)
	}

	// Empty passwords are refused for new keys unless explicitly allowed.
	t.Setenv(envPassword, "")
	if _, _, err, code := keysCLI(t, home, "", "keys", "new", "empty", "--light-kdf"); code != exitUsage {
		t.Fatalf("empty password: exit %d (%v), want %d", code, err, exitUsage)
	}
	t.Setenv(envInsecureEmpty, "1")
	if _, _, err, _ := keysCLI(t, home, "", "keys", "new", "empty", "--light-kdf"); err != nil {
		t.Fatalf("empty password with %s=1: %v", envInsecureEmpty, err)
	}
	if _, _, err, _ := keysCLI(t, home, "", "keys", "export", "empty"); err != nil {
		t.Fatalf("export with empty password: %v", err)
	}

	// With no source and no terminal, the error says how to give one.
	if term.IsTerminal(int(os.Stdin.Fd())) {
		t.Skip("stdin is a terminal; the no-terminal path cannot be tested here")
	}
	os.Unsetenv(envPassword)
	_, _, err, code := keysCLI(t, home, "", "keys", "export", "filekey")
	if code != exitUsage || err == nil || !strings.Contains(err.Error(), "--password-file") || !strings.Contains(err.Error(), envPassword) {
		t.Fatalf("no password source: exit %d, %v", code, err)
	}
}

func TestKeysCLIHelp(t *testing.T) {
	for _, sub := range []string{"new", "list", "show", "import", "export", "delete"} {
		out, _, err, _ := keysCLI(t, t.TempDir(), "", "keys", sub, "--help")
		if err != nil || !strings.Contains(out, "agora keys "+sub) {
			t.Errorf("keys %s --help: %v\n%s", sub, err, out)
		}
	}
}
