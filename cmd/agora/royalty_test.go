package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain"
	"github.com/agoranet/agora/chain/subnet"
	"github.com/agoranet/agora/dataset"
	"github.com/agoranet/agora/internal/poll"
	"github.com/agoranet/agora/internal/testkit"
	"github.com/agoranet/agora/keys"
)

// writeFiles creates files (slash path → contents) under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, body := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDataBuildProveVerifyCLI runs the offline dataset commands end to end:
// build a manifest with per-prefix contributors, prove a file, verify the
// proof, and refuse tampered proofs, wrong roots, changed and unknown files.
func TestDataBuildProveVerifyCLI(t *testing.T) {
	ctx := context.Background()
	_, alice := testkit.Key(1)
	_, bob := testkit.Key(2)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"a.txt": "alpha", "img/b.png": "bravo!", "img/c.png": "charlie", "notes/d.md": "d"})
	contribs := filepath.Join(t.TempDir(), "contributors")
	if err := os.WriteFile(contribs, []byte("# images are bob's\nimg "+bob.String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	out, code := runCLI(t, ctx, "data", "build", dir, "--contributor", alice.String(), "--contributors", contribs, "--weight-by", "size", "--output", "json")
	if code != exitOK {
		t.Fatalf("data build: exit %d: %s", code, out)
	}
	built := decodeJSON[buildOut](t, out)
	if built.Files != 4 || built.Size != 5+6+7+1 || built.Contributors != 2 || built.Manifest != filepath.Join(dir, dataset.ManifestFile) {
		t.Fatalf("build %+v", built)
	}
	m, err := dataset.Load(built.Manifest)
	if err != nil || m.Root.String() != built.Root {
		t.Fatalf("manifest on disk: %v (root %s, printed %s)", err, m.Root, built.Root)
	}
	if e := m.Entries[1]; e.Path != "img/b.png" || e.Contributor != bob || e.Weight != 6 {
		t.Fatalf("entry %+v: want img/b.png by bob weighing 6", e)
	}
	// Rebuilding with the manifest in the directory gives the same root.
	if out, _ := runCLI(t, ctx, "data", "build", dir, "--contributor", alice.String(), "--contributors", contribs, "--weight-by", "size"); !strings.Contains(out, built.Root) {
		t.Fatalf("rebuild printed %q, want root %s", out, built.Root)
	}

	// Prove from stdout (FILE relative to DIR) and into a file (FILE as a path from here).
	proofOut, code := runCLI(t, ctx, "data", "prove", dir, "img/c.png")
	if code != exitOK {
		t.Fatalf("data prove: exit %d", code)
	}
	p, err := dataset.ParseProof([]byte(proofOut))
	if err != nil || p.Index != 2 || p.Files != 4 || p.Leaf.Contributor != bob {
		t.Fatalf("proof %+v %v", p, err)
	}
	proofFile := filepath.Join(t.TempDir(), "proof.json")
	if _, code := runCLI(t, ctx, "data", "prove", dir, filepath.Join(dir, "img", "c.png"), "--out", proofFile); code != exitOK {
		t.Fatalf("data prove --out: exit %d", code)
	}
	if b, _ := os.ReadFile(proofFile); string(b) != proofOut {
		t.Fatal("the proof written to --out differs from the one printed")
	}
	out, code = runCLI(t, ctx, "data", "verify", proofFile, "--root", built.Root, "--output", "json")
	v := decodeJSON[verifyOut](t, out)
	if code != exitOK || !v.Valid || v.Index != 2 || v.Contributor != bob.String() || v.Weight != 7 {
		t.Fatalf("verify: exit %d %+v", code, v)
	}

	tampered := strings.Replace(proofOut, `"weight": 7`, `"weight": 70`, 1)
	if tampered == proofOut {
		t.Fatal("test bug: no weight to tamper with")
	}
	tamperedFile := filepath.Join(t.TempDir(), "tampered.json")
	if err := os.WriteFile(tamperedFile, []byte(tampered), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
		want int
	}{
		{"tampered proof", []string{"data", "verify", tamperedFile}, exitError},
		{"another root", []string{"data", "verify", proofFile, "--root", strings.Repeat("ab", 32)}, exitError},
		{"bad --root", []string{"data", "verify", proofFile, "--root", "xyz"}, exitUsage},
		{"no proof file", []string{"data", "verify", filepath.Join(dir, "none.json")}, exitNotFound},
		{"not a proof", []string{"data", "verify", filepath.Join(dir, "a.txt")}, exitError},
		{"file not in the manifest", []string{"data", "prove", dir, "zzz.txt"}, exitNotFound},
		{"no such dir", []string{"data", "build", filepath.Join(dir, "nope"), "--contributor", alice.String()}, exitNotFound},
		{"no contributor", []string{"data", "build", dir}, exitUsage},
		{"bad weight-by", []string{"data", "build", dir, "--contributor", alice.String(), "--weight-by", "lines"}, exitUsage},
	} {
		if out, code := runCLI(t, ctx, c.args...); code != c.want {
			t.Errorf("%s: exit %d, want %d (%s)", c.name, code, c.want, out)
		}
	}
	// A file changed since the build is refused, not proved.
	writeFiles(t, dir, map[string]string{"a.txt": "ALPHA"})
	if _, code := runCLI(t, ctx, "data", "prove", dir, "a.txt"); code != exitError {
		t.Errorf("changed file: exit %d, want %d", code, exitError)
	}
}

// TestModelPublishDryRunCLI: the model id publish prints is the file's
// sha256, and a publish missing its terms is a usage error before any key
// or node is touched.
func TestModelPublishDryRunCLI(t *testing.T) {
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "m.gguf")
	body := []byte("not really a model, but publish only hashes it")
	if err := os.WriteFile(file, body, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	want := hex.EncodeToString(sum[:])
	if out, code := runCLI(t, ctx, "model", "publish", file, "--dry-run"); code != exitOK || strings.TrimSpace(out) != want {
		t.Fatalf("dry run: exit %d, printed %q, want %s", code, out, want)
	}
	out, code := runCLI(t, ctx, "model", "publish", file, "--dry-run", "--output", "json")
	res := decodeJSON[struct {
		ModelID string `json:"model_id"`
	}](t, out)
	if code != exitOK || res.ModelID != want {
		t.Fatalf("dry run json: exit %d %+v", code, res)
	}
	home := t.TempDir()
	for _, c := range []struct {
		name string
		args []string
		want int
	}{
		{"no such file", []string{"model", "publish", file + ".missing", "--dry-run"}, exitNotFound},
		{"no royalty terms", []string{"model", "publish", file, "--from", "alice"}, exitUsage},
		{"royalty above 100%", []string{"model", "publish", file, "--from", "alice", "--royalty-bps", "10001"}, exitUsage},
		{"data-bps without citations", []string{"model", "publish", file, "--from", "alice", "--royalty-bps", "100", "--data-bps", "10"}, exitUsage},
		{"bad citation", []string{"model", "publish", file, "--from", "alice", "--royalty-bps", "100", "--cite", "abc=1"}, exitUsage},
		{"no --from", []string{"model", "publish", file, "--royalty-bps", "100"}, exitUsage},
		{"bad model id", []string{"model", "show", "XYZ"}, exitUsage},
		{"bad root", []string{"data", "show", "00"}, exitUsage},
	} {
		if out, code := runCLI(t, ctx, append(c.args, "--home", home, "--node", "http://127.0.0.1:1")...); code != c.want {
			t.Errorf("%s: exit %d, want %d (%s)", c.name, code, c.want, out)
		}
	}
}

// TestModelDataRoyaltyCLI drives models and data as shared property through
// the CLI on a real node: a dataset registered and credited by proofs, a
// model published citing it, shares transferred and sold in an offering,
// a subnet pinning the model earning channel revenue, and the royalty
// claimed by a shareholder and a contributor.
func TestModelDataRoyaltyCLI(t *testing.T) {
	home := t.TempDir()
	t.Setenv("AGORA_PASSWORD", "pw")
	ks, err := keys.Open(home+"/keys", keys.WithScryptN(1<<10))
	if err != nil {
		t.Fatal(err)
	}
	names := []struct {
		name string
		kind keys.Kind
	}{{"owner", keys.Coldkey}, {"ownerhot", keys.Hotkey}, {"val", keys.Coldkey}, {"valhot", keys.Hotkey},
		{"miner", keys.Coldkey}, {"minerhot", keys.Hotkey}, {"buyer", keys.Coldkey}, {"contrib", keys.Coldkey}}
	addrs := map[string]address.Address{}
	for _, k := range names {
		info, _, err := ks.Create(k.name, k.kind, []byte("pw"))
		if err != nil {
			t.Fatal(err)
		}
		addrs[k.name] = info.Address
	}
	g := chain.Genesis{Params: chain.DefaultParams(200), Devnet: true}
	g.Params.RoyaltyStreamBlocks = 2
	sp := subnet.DefaultSubnetParams()
	sp.Tempo, sp.WeightsRateLimit, sp.CommitReveal, sp.ImmunityPeriod, sp.MaxUids, sp.MaxValidators = 9, 0, false, 10, 16, 4
	g.Params.DefaultSubnet = sp
	for _, name := range []string{"owner", "val", "miner", "buyer", "contrib"} {
		g.Accounts = append(g.Accounts, chain.GenesisAccount{Address: addrs[name], Balance: 10_000 * agr.Unit})
	}
	cn := startCLINode(t, home, "agora-royalty-cli", g)
	ctx, run, exit := cn.ctx, cn.run, cn.exit
	runJSON := func(v any, args ...string) {
		t.Helper()
		out := run(append(args, "--output", "json")...)
		if err := json.Unmarshal([]byte(out), v); err != nil {
			t.Fatalf("agora %s: output is not JSON: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	// waitFor polls a JSON query until cond holds of its answer.
	waitFor := func(what string, v any, cond func() bool, args ...string) {
		t.Helper()
		if err := poll.Until(ctx, 200*time.Millisecond, func() bool { runJSON(v, args...); return cond() }); err != nil {
			t.Fatalf("%s: %v (last %+v)", what, err, v)
		}
	}

	// A dataset of two files, one by the owner and one by contrib, whose
	// contributors join by proof.
	dataDir := t.TempDir()
	writeFiles(t, dataDir, map[string]string{"a/one.txt": "one", "b/two.txt": "two"})
	contribs := filepath.Join(t.TempDir(), "contributors")
	if err := os.WriteFile(contribs, []byte(fmt.Sprintf("a %s\nb %s\n", addrs["owner"], addrs["contrib"])), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code := runCLI(t, ctx, "data", "build", dataDir, "--contributors", contribs, "--output", "json")
	if code != exitOK {
		t.Fatalf("data build: exit %d", code)
	}
	built := decodeJSON[buildOut](t, out)
	var reg struct {
		Root   string `json:"root"`
		Code   uint32 `json:"code"`
		Height int64  `json:"height"`
	}
	runJSON(&reg, "data", "register", dataDir, "--from", "owner", "--name", "two files", "--license", "cc-by-4.0", "--url", "https://example.org/two")
	if reg.Root != built.Root || reg.Code != 0 || reg.Height == 0 {
		t.Fatalf("data register %+v, want root %s", reg, built.Root)
	}
	proofs := t.TempDir()
	for _, f := range []string{"a/one.txt", "b/two.txt"} {
		pf := filepath.Join(proofs, filepath.Base(f)+".json")
		if _, code := runCLI(t, ctx, "data", "prove", dataDir, f, "--out", pf); code != exitOK {
			t.Fatalf("data prove %s: exit %d", f, code)
		}
		run("data", "contribute", pf, "--from", "buyer") // anyone may send it
	}
	if code := exit("data", "contribute", filepath.Join(proofs, "two.txt.json"), "--from", "buyer"); code != exitError {
		t.Errorf("a leaf credited twice: exit %d, want %d", code, exitError)
	}
	var ds datasetOut
	runJSON(&ds, "data", "show", built.Root)
	if ds.Files != 2 || ds.Contributors != 2 || ds.Shares != 2 || ds.Name != "two files" || ds.Owner != addrs["owner"].String() {
		t.Fatalf("dataset %+v", ds)
	}
	var dl []datasetOut
	runJSON(&dl, "data", "list")
	if len(dl) != 1 || dl[0].Root != built.Root {
		t.Fatalf("data list %+v", dl)
	}

	// A model citing it: 10% royalty, half of it to the dataset.
	modelFile := filepath.Join(t.TempDir(), "m.gguf")
	if err := os.WriteFile(modelFile, []byte("model bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("model bytes"))
	id := hex.EncodeToString(sum[:])
	var pub struct {
		ModelID string `json:"model_id"`
		Code    uint32 `json:"code"`
	}
	runJSON(&pub, "model", "publish", modelFile, "--from", "owner", "--name", "tiny", "--license", "apache-2.0",
		"--url", "https://example.org/m.gguf", "--royalty-bps", "1000", "--shares", "1000", "--data-bps", "5000", "--cite", built.Root+"=1")
	if pub.ModelID != id || pub.Code != 0 {
		t.Fatalf("publish %+v, want id %s", pub, id)
	}
	if code := exit("model", "publish", modelFile, "--from", "owner", "--royalty-bps", "1"); code != exitError {
		t.Errorf("publishing the same model twice: exit %d, want %d", code, exitError)
	}
	run("model", "update", id, "--from", "owner", "--name", "tiny v2")
	var m modelOut
	runJSON(&m, "model", "show", id)
	if m.Name != "tiny v2" || m.License != "apache-2.0" || len(m.URLs) != 1 || m.Shares != 1000 || m.RoyaltyBps != 1000 || m.DataBps != 5000 ||
		len(m.Citations) != 1 || m.Citations[0].Dataset != built.Root || m.Owner != addrs["owner"].String() {
		t.Fatalf("model %+v", m)
	}
	if out := run("model", "list"); !strings.Contains(out, id) || !strings.Contains(out, "tiny v2") {
		t.Fatalf("model list: %s", out)
	}

	// Shares: a transfer, then an offering the buyer buys out in two purchases.
	run("model", "shares", "transfer", id, "buyer", "100", "--from", "owner")
	run("model", "offer", id, "--from", "owner", "--shares", "10", "--price", "1agr", "--price-step", "0.1agr", "--min-shares", "5", "--blocks", "1000")
	var off offeringOut
	runJSON(&off, "model", "offering", id)
	if off.Shares != 10 || off.Sold != 0 || off.NextPrice != agr.Unit || off.Seller != addrs["owner"].String() {
		t.Fatalf("offering %+v", off)
	}
	if code := exit("model", "buy", id, "11", "--from", "buyer"); code != exitUsage {
		t.Errorf("buying more than is offered: exit %d, want %d", code, exitUsage)
	}
	if code := exit("model", "buy", id, "4", "--from", "buyer", "--max-cost", "4agr"); code != exitError {
		t.Errorf("buying above --max-cost: exit %d, want %d", code, exitError)
	}
	run("model", "buy", id, "4", "--from", "buyer")
	runJSON(&off, "model", "offering", id)
	if off.Sold != 4 || off.Raised != 46*agr.Unit/10 || len(off.Purchases) != 1 || off.NextPrice != 14*agr.Unit/10 {
		t.Fatalf("offering after a purchase %+v", off)
	}
	run("model", "buy", id, "6", "--from", "buyer") // sells out: closes in this tx
	if code := exit("model", "offering", id); code != exitNotFound {
		t.Errorf("offering after selling out: exit %d, want %d", code, exitNotFound)
	}
	var pos positionOut
	runJSON(&pos, "model", "shares", "show", id, "buyer")
	if pos.Shares != 110 || pos.Of != 1000 {
		t.Fatalf("buyer position %+v", pos)
	}
	runJSON(&pos, "model", "shares", "show", id, "owner")
	if pos.Shares != 890 || pos.Locked != 0 {
		t.Fatalf("owner position %+v", pos)
	}

	// A subnet pinning the model; 10 AGR of channel revenue pays 1 AGR royalty.
	run("subnet", "register", "--from", "owner", "--hotkey", "ownerhot", "--name", "chat")
	other := sha256.Sum256([]byte("an unregistered model"))
	if code := exit("subnet", "set-params", "1", "--from", "owner", "--model-id", hex.EncodeToString(other[:])); code != exitError {
		t.Errorf("pinning an unregistered model: exit %d, want %d", code, exitError)
	}
	run("subnet", "set-params", "1", "--from", "owner", "--model-id", id)
	run("neuron", "register", "1", "--from", "val", "--hotkey", "valhot")
	run("neuron", "register", "1", "--from", "miner", "--hotkey", "minerhot", "--max-burn", "10agr")
	run("stake", "add", "1", "valhot", "100agr", "--from", "val")
	run("subnet", "start", "1", "--from", "owner")
	run("channel", "open", "miner", "10agr", "--from", "buyer", "--netuid", "1", "--expiry-blocks", "100")
	var voucher struct {
		Signature string `json:"signature"`
	}
	runJSON(&voucher, "channel", "voucher", "1", "10agr", "--from", "buyer")
	run("channel", "claim", "1", "10agr", "--signature", voucher.Signature, "--from", "miner")
	const royalty = agr.Unit // 10% of 10 AGR
	waitFor("the model's royalty streamed in", &m, func() bool { return m.Earned > 0 && m.Streaming == 0 }, "model", "show", id)
	if m.Earned != royalty/2 || m.DataPaid != royalty/2 {
		t.Fatalf("model earned %d and passed %d to data, want %d each", m.Earned, m.DataPaid, royalty/2)
	}
	waitFor("the dataset's royalty streamed in", &ds, func() bool { return ds.Earned > 0 && ds.Streaming == 0 }, "data", "show", built.Root)
	if ds.Earned != royalty/2 {
		t.Fatalf("dataset earned %d, want %d", ds.Earned, royalty/2)
	}

	// Claims pay what was claimable: 89% of the model's half to the owner,
	// half the dataset's (weight 1 of 2) to contrib.
	runJSON(&pos, "model", "shares", "show", id, "owner")
	if want := uint64(royalty / 2 * 890 / 1000); pos.Claimable > want || pos.Claimable+1 < want {
		t.Fatalf("owner claimable %d, want %d", pos.Claimable, want)
	}
	ownerClaimable := pos.Claimable
	run("model", "claim", id, "--from", "owner")
	runJSON(&pos, "model", "shares", "show", id, "owner")
	if pos.Claimed != ownerClaimable || pos.Claimable != 0 {
		t.Fatalf("owner after claiming %d: %+v", ownerClaimable, pos)
	}
	if code := exit("model", "claim", id, "--from", "owner"); code != exitError {
		t.Errorf("claiming nothing: exit %d, want %d", code, exitError)
	}
	runJSON(&pos, "data", "position", built.Root, "contrib")
	if want := uint64(royalty / 2 / 2); pos.Shares != 1 || pos.Of != 2 || pos.Claimable > want || pos.Claimable+1 < want {
		t.Fatalf("contributor position %+v, want %d claimable", pos, want)
	}
	contribClaimable := pos.Claimable
	run("data", "claim", built.Root, "--from", "contrib")
	runJSON(&pos, "data", "position", built.Root, "contrib")
	if pos.Claimed != contribClaimable || pos.Claimable != 0 {
		t.Fatalf("contributor after claiming %d: %+v", contribClaimable, pos)
	}
	for _, c := range []struct {
		args []string
		want int
	}{
		{[]string{"model", "show", strings.Repeat("ab", 32)}, exitNotFound},
		{[]string{"data", "show", strings.Repeat("ab", 32)}, exitNotFound},
		{[]string{"model", "buy", id, "1", "--from", "buyer"}, exitNotFound}, // no open offering
		{[]string{"model", "update", id, "--from", "buyer", "--name", "mine"}, exitError},
		{[]string{"model", "shares", "transfer", id, "contrib", "1000", "--from", "buyer"}, exitError},
	} {
		if code := exit(c.args...); code != c.want {
			t.Errorf("agora %v: exit %d, want %d", c.args, code, c.want)
		}
	}
}
