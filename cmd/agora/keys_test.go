package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKeysCLI(t *testing.T) {
	home := t.TempDir()
	t.Setenv("AGORA_PASSWORD", "pw-for-tests")
	ctx := context.Background()
	run := func(args ...string) (string, int) {
		return runCLI(t, ctx, append(args, "--home", home)...)
	}
	out, code := run("keys", "new", "alice", "--output", "json")
	var created struct {
		Name     string `json:"name"`
		Kind     string `json:"kind"`
		Address  string `json:"address"`
		Mnemonic string `json:"mnemonic"`
	}
	if err := json.Unmarshal([]byte(out), &created); err != nil || code != exitOK {
		t.Fatalf("keys new: %d %q %v", code, out, err)
	}
	if created.Kind != "coldkey" || len(strings.Fields(created.Mnemonic)) != 24 || !strings.HasPrefix(created.Address, "agora1") {
		t.Fatalf("created %+v", created)
	}
	if _, code := run("keys", "new", "hot1", "--kind", "hotkey"); code != exitOK {
		t.Fatalf("new hotkey exit %d", code)
	}
	out, _ = run("keys", "list", "--output", "json")
	var list []struct{ Name, Kind string }
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 2 || list[0].Name != "alice" || list[1].Kind != "hotkey" {
		t.Fatalf("list %q %v", out, err)
	}
	if out, code := run("keys", "show", "alice"); code != exitOK || !strings.Contains(out, created.Address) {
		t.Fatalf("show: %d %s", code, out)
	}
	if out, code := run("keys", "export", "alice"); code != exitOK || strings.TrimSpace(out) != created.Mnemonic {
		t.Fatalf("export: %d %q", code, out)
	}
	mf := filepath.Join(t.TempDir(), "m.txt")
	os.WriteFile(mf, []byte(created.Mnemonic+"\n"), 0o600)
	out, code = run("keys", "import", "alice2", "--mnemonic-file", mf, "--output", "json")
	if code != exitOK || !strings.Contains(out, created.Address) {
		t.Fatalf("import: %d %s", code, out)
	}
	pwFile := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pwFile, []byte("wrong\n"), 0o600)
	if _, code := run("keys", "export", "alice", "--password-file", pwFile); code != exitError {
		t.Fatalf("wrong password exit %d, want %d", code, exitError)
	}
	cases := []struct {
		args []string
		want int
	}{
		{[]string{"keys", "show", "nobody"}, exitNotFound},
		{[]string{"keys", "new", "alice"}, exitUsage},
		{[]string{"keys", "new", "../evil"}, exitUsage},
		{[]string{"keys", "new", "x", "--kind", "warm"}, exitUsage},
		{[]string{"keys", "delete", "alice"}, exitUsage}, // no --yes and no terminal
		{[]string{"keys", "delete", "alice", "--yes"}, exitOK},
		{[]string{"keys", "delete", "alice", "--yes"}, exitNotFound},
	}
	for _, c := range cases {
		if _, code := run(c.args...); code != c.want {
			t.Errorf("agora %v: exit %d, want %d", c.args, code, c.want)
		}
	}
}
