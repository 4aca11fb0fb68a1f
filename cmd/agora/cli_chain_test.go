package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/agoranet/agora/bench"
	"github.com/agoranet/agora/client"
)

// runCLI runs the agora command tree in-process and returns stdout and the exit code.
func runCLI(t *testing.T, ctx context.Context, args ...string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	code := runCLITo(t, ctx, &out, args...)
	return out.String(), code
}

// runCLITo runs the command tree with stdout going to w as it is written.
func runCLITo(t *testing.T, ctx context.Context, w io.Writer, args ...string) int {
	t.Helper()
	root := newRootCmd()
	var errOut bytes.Buffer
	root.SetOut(w)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err != nil {
		t.Logf("agora %s: %v (stderr: %s)", strings.Join(args, " "), err, errOut.String())
	}
	return exitCode(err)
}

func TestDevnetTransferAndQueryCLI(t *testing.T) {
	home := t.TempDir()
	t.Setenv("AGORA_PASSWORD", devnetPassword)
	t.Setenv("AGORA_HOME", "")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	devCtx, stopDevnet := context.WithCancel(ctx)
	devnetDone := make(chan int, 1)
	devnetOut := make(chan string, 1)
	// Port 0: the node binds whatever port the kernel gives and the devnet
	// reports the address it got, which the test reads as it is printed.
	var devnetBuf bytes.Buffer
	pr, pw := io.Pipe()
	go func() {
		code := runCLITo(t, devCtx, io.MultiWriter(&devnetBuf, pw), "devnet", "--home", home, "--rpc-port", "0",
			"--p2p-port", "0", "--explorer-port", "0", "--status-every", "1h", "--output", "json", "--chain-only")
		pw.Close()
		devnetOut <- devnetBuf.String()
		devnetDone <- code
	}()
	var started struct {
		RPC string `json:"rpc"`
	}
	if err := json.NewDecoder(pr).Decode(&started); err != nil || started.RPC == "" {
		t.Fatalf("devnet printed no RPC address: %+v, %v", started, err)
	}
	go io.Copy(io.Discard, pr)
	nodeURL := started.RPC
	defer func() {
		stopDevnet()
		select {
		case code := <-devnetDone:
			if code != exitOK {
				t.Errorf("devnet exited with %d after Ctrl-C, want 0", code)
			}
		case <-time.After(30 * time.Second):
			t.Error("devnet did not stop within 30 s of cancellation")
		}
	}()

	// Wait for the devnet's RPC to answer.
	deadline := time.Now().Add(60 * time.Second)
	for {
		if out, code := runCLI(t, ctx, "query", "block", "--node", nodeURL, "--output", "json"); code == exitOK && strings.Contains(out, `"height"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("devnet RPC never came up")
		}
		time.Sleep(300 * time.Millisecond)
	}

	if out, code := runCLI(t, ctx, "keys", "new", "alice", "--home", home, "--output", "json"); code != exitOK || !strings.Contains(out, "agora1") {
		t.Fatalf("keys new: %d %s", code, out)
	}
	out, code := runCLI(t, ctx, "tx", "transfer", "--from", devnetFaucet, "alice", "10agr", "--home", home, "--node", nodeURL, "--output", "json")
	if code != exitOK {
		t.Fatalf("transfer exit %d: %s", code, out)
	}
	var tr txResult
	if err := json.Unmarshal([]byte(out), &tr); err != nil || tr.Code != 0 || tr.Height == 0 || len(tr.Hash) != 64 {
		t.Fatalf("transfer result %q: %+v %v", out, tr, err)
	}

	out, code = runCLI(t, ctx, "query", "account", "alice", "--home", home, "--node", nodeURL, "--output", "json")
	var acc struct {
		Address string `json:"address"`
		Balance uint64 `json:"balance"`
		Proof   *struct {
			Height  int64  `json:"height"`
			AppHash string `json:"app_hash"`
		} `json:"proof"`
	}
	if err := json.Unmarshal([]byte(out), &acc); err != nil || code != exitOK {
		t.Fatalf("query account: %d %q %v", code, out, err)
	}
	if acc.Balance != 10_000_000_000 || acc.Proof == nil || acc.Proof.AppHash == "" {
		t.Fatalf("alice account %+v", acc)
	}
	// With a root of trust, the proof rests on the light client: the right
	// hash of block 1 verifies, a wrong one refuses to answer at all.
	hc, err := client.New(nodeURL)
	if err != nil {
		t.Fatal(err)
	}
	first, err := hc.Commit(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	trusted := []string{"query", "balance", "alice", "--home", home, "--node", nodeURL + "," + nodeURL, "--trust-height", "1"}
	if out, code := runCLI(t, ctx, append(trusted, "--trust-hash", hex.EncodeToString(first.Hash()))...); code != exitOK || !strings.Contains(out, "10 AGR") {
		t.Fatalf("balance through the light client: %d %q", code, out)
	}
	if out, code := runCLI(t, ctx, append(trusted, "--trust-hash", strings.Repeat("ab", 32))...); code == exitOK {
		t.Fatalf("balance with a trusted hash the chain never had was answered: %q", out)
	}
	if out, _ := runCLI(t, ctx, "query", "balance", "alice", "--home", home, "--node", nodeURL, "--prove=false"); strings.TrimSpace(out) != "10 AGR" {
		t.Fatalf("query balance text %q", out)
	}
	out, code = runCLI(t, ctx, "query", "tx", tr.Hash, "--node", nodeURL, "--output", "json")
	if code != exitOK || !strings.Contains(out, `"transfer"`) || !strings.Contains(out, acc.Address) {
		t.Fatalf("query tx: %d %s", code, out)
	}
	out, code = runCLI(t, ctx, "query", "supply", "--node", nodeURL, "--output", "json")
	var sup struct {
		Total, Cap, Minted, Burned, PendingEmission uint64
	}
	if err := json.Unmarshal([]byte(strings.ReplaceAll(out, "pending_emission", "PendingEmission")), &sup); err != nil || code != exitOK {
		t.Fatalf("query supply: %d %q %v", code, out, err)
	}
	if sup.Burned != 1_000_000 || sup.Minted == 0 || sup.PendingEmission != sup.Minted || sup.Total > sup.Cap {
		t.Fatalf("supply %+v", sup)
	}

	// Errors: one clear line and an exit code that means something.
	cases := []struct {
		name string
		args []string
		want int
	}{
		{"amount without unit", []string{"tx", "transfer", "--from", devnetFaucet, "alice", "10", "--home", home, "--node", nodeURL}, exitUsage},
		{"unknown key", []string{"tx", "transfer", "--from", "nobody", "alice", "1agr", "--home", home, "--node", nodeURL}, exitNotFound},
		{"overspend", []string{"tx", "transfer", "--from", "alice", devnetFaucet, "11agr", "--home", home, "--node", nodeURL}, exitError},
		{"unknown tx", []string{"query", "tx", strings.Repeat("AB", 32), "--node", nodeURL}, exitNotFound},
		{"bad output", []string{"query", "supply", "--node", nodeURL, "--output", "yaml"}, exitUsage},
		{"node down", []string{"query", "supply", "--node", "http://127.0.0.1:1"}, exitError},
	}
	for _, c := range cases {
		if _, code := runCLI(t, ctx, c.args...); code != c.want {
			t.Errorf("%s: exit %d, want %d", c.name, code, c.want)
		}
	}

	stopDevnet()
	var info devnetInfo
	if err := json.Unmarshal([]byte(<-devnetOut), &info); err != nil || info.ChainID != devnetChainID || !strings.HasPrefix(info.Faucet.Address, "agora1") || len(strings.Fields(info.Faucet.Mnemonic)) != 24 {
		t.Fatalf("devnet printed %+v (%v)", info, err)
	}
}

func TestNodeInitRejectsBadAccounts(t *testing.T) {
	ctx := context.Background()
	for _, acct := range []string{"nope", "agora1xyz=1agr", "=1agr"} {
		if _, code := runCLI(t, ctx, "node", "init", "--home", t.TempDir(), "--account", acct); code != exitUsage {
			t.Errorf("--account %q: exit %d, want %d", acct, code, exitUsage)
		}
	}
	home := t.TempDir()
	if _, code := runCLI(t, ctx, "node", "init", "--home", home, "--output", "json"); code != exitOK {
		t.Fatalf("node init exit %d", code)
	}
	if _, code := runCLI(t, ctx, "node", "init", "--home", home); code != exitUsage {
		t.Fatalf("second init exit %d, want usage error", code)
	}
}

func TestBenchTransfersSmall(t *testing.T) {
	out, code := runCLI(t, context.Background(), "bench", "transfers", "--accounts", "20", "--per-account", "5",
		"--conns", "4", "--block-time", "200ms", "--output", "json")
	var res bench.TransfersResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != exitOK {
		t.Fatalf("bench: %d %q %v", code, out, err)
	}
	if res.Committed != 100 || res.Rejected != 0 || res.TxPerSecond <= 0 || res.P99Millis < res.P50Millis {
		t.Fatalf("bench result %+v", res)
	}
}

func TestBenchGatewaySmall(t *testing.T) {
	for _, mode := range [][]string{nil, {"--stream"}} {
		out, code := runCLI(t, context.Background(), append([]string{"bench", "gateway", "--duration", "300ms", "--concurrency", "2", "--output", "json"}, mode...)...)
		var res bench.GatewayResult
		if err := json.Unmarshal([]byte(out), &res); err != nil || code != exitOK {
			t.Fatalf("bench gateway: %d %q %v", code, out, err)
		}
		if res.Direct.RPS <= 0 || res.ViaGateway.RPS <= 0 || res.ViaGateway.P99ms < res.ViaGateway.P50ms || !res.Payments {
			t.Fatalf("bench result %+v", res)
		}
	}
}
