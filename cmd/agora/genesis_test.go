package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agoranet/agora/chain"
	"github.com/agoranet/agora/keys"
	"github.com/agoranet/agora/node"
)

// genesisWorld is a genesis file with one funded operator key and a node
// home whose consensus key it enrols.
type genesisWorld struct {
	dir, home, file, pwFile, nodeHome, addr string
}

func newGenesisWorld(t *testing.T, chainID string) genesisWorld {
	t.Helper()
	dir := t.TempDir()
	w := genesisWorld{dir: dir, home: filepath.Join(dir, "h"), file: filepath.Join(dir, "genesis.json"),
		pwFile: filepath.Join(dir, "pw"), nodeHome: filepath.Join(dir, "n1")}
	if err := os.WriteFile(w.pwFile, []byte("pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ks, err := keys.Open(filepath.Join(w.home, "keys"), keys.WithScryptN(1<<4))
	if err != nil {
		t.Fatal(err)
	}
	info, _, err := ks.Create("op", keys.Coldkey, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	w.addr = info.Address.String()
	if err := node.Init(w.nodeHome, node.InitOptions{ChainID: "tmp", Genesis: chain.Genesis{Params: chain.DefaultParams(1000)}}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, args := range [][]string{
		{"genesis", "init", "--chain-id", chainID},
		{"genesis", "add-account", w.addr, "2000agr"},
	} {
		if _, code := runCLI(t, ctx, append(args, "--file", w.file, "--home", w.home)...); code != 0 {
			t.Fatalf("%v: exit %d", args, code)
		}
	}
	return w
}

func (w genesisWorld) run(t *testing.T, args ...string) (string, int) {
	t.Helper()
	return runCLI(t, context.Background(), append(args, "--file", w.file, "--home", w.home, "--password-file", w.pwFile)...)
}

func (w genesisWorld) gentx(t *testing.T, chainFile, out string) {
	t.Helper()
	if _, code := runCLI(t, context.Background(), "genesis", "gentx", "--from", "op", "--node-home", w.nodeHome, "--bond", "1000agr",
		"--moniker", "n1", "--out", out, "--file", chainFile, "--home", w.home, "--password-file", w.pwFile); code != 0 {
		t.Fatalf("gentx: exit %d", code)
	}
}

func TestGenesisCLIBuildsAValidGenesis(t *testing.T) {
	w := newGenesisWorld(t, "agora-g")
	if _, code := w.run(t, "genesis", "validate"); code == 0 {
		t.Fatal("a genesis without chain validators validated")
	}
	gentx := filepath.Join(w.dir, "n1.gentx.json")
	w.gentx(t, w.file, gentx)
	if _, code := w.run(t, "genesis", "collect", gentx); code != 0 {
		t.Fatal("collect failed")
	}
	out, code := w.run(t, "genesis", "validate", "-o", "json")
	if code != 0 || !strings.Contains(out, `"chain_validators": 1`) {
		t.Fatalf("validate: exit %d, %s", code, out)
	}
	h1, _ := w.run(t, "genesis", "hash")
	h2, _ := w.run(t, "genesis", "hash")
	if len(strings.TrimSpace(h1)) != 64 || h1 != h2 {
		t.Fatalf("hash %q then %q", h1, h2)
	}
	// The same entry twice is one consensus key enrolled twice.
	if _, code := w.run(t, "genesis", "collect", gentx); code == 0 {
		t.Fatal("the same gentx was collected twice")
	}
}

// TestGenesisCLIRefusesForgedEntries: a coordinator who edits an operator's
// signed entry (a larger bond, another consensus key), or replays an entry
// signed for another network, is caught at collect.
func TestGenesisCLIRefusesForgedEntries(t *testing.T) {
	w := newGenesisWorld(t, "agora-g")
	gentx := filepath.Join(w.dir, "n1.gentx.json")
	w.gentx(t, w.file, gentx)
	raw, err := os.ReadFile(gentx)
	if err != nil {
		t.Fatal(err)
	}
	other := newGenesisWorld(t, "agora-other")
	otherTx := filepath.Join(w.dir, "other.gentx.json")
	other.gentx(t, other.file, otherTx)
	tamper := func(edit func(*chain.GenesisValidator)) string {
		v, err := parseGentx(raw)
		if err != nil {
			t.Fatal(err)
		}
		edit(&v)
		b, _ := json.Marshal(v)
		p := filepath.Join(t.TempDir(), "x.json")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for name, f := range map[string]string{
		"bond raised":           tamper(func(v *chain.GenesisValidator) { v.Bond++ }),
		"consensus key swapped": tamper(func(v *chain.GenesisValidator) { v.ConsensusPubKey[0] ^= 1 }),
		"moniker changed":       tamper(func(v *chain.GenesisValidator) { v.Moniker = "evil" }),
		"signature cut":         tamper(func(v *chain.GenesisValidator) { v.Signature = v.Signature[:10] }),
		"other chain id":        otherTx,
	} {
		if _, code := w.run(t, "genesis", "collect", f); code == 0 {
			t.Errorf("%s: collected", name)
		}
	}
	extra := filepath.Join(t.TempDir(), "x.json")
	if err := os.WriteFile(extra, append(raw[:len(raw)-2], []byte(`,"power":100}`)...), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, code := w.run(t, "genesis", "collect", extra); code == 0 {
		t.Error("an entry with an unknown field was collected")
	}
}

// FuzzParseGentx: a gentx file comes from another operator.
func FuzzParseGentx(f *testing.F) {
	f.Add([]byte(`{"moniker":"n1","operator_pub_key":"AA==","consensus_pub_key":"AA==","bond":1,"signature":"AA=="}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		v, err := parseGentx(raw)
		if err != nil {
			return
		}
		_ = v.Verify("agora-fuzz")
	})
}
