package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/agoranet/agora/internal/browser"
	"github.com/agoranet/agora/internal/poll"
	"github.com/agoranet/agora/internal/testkit"
)

// runDevnet runs `agora devnet` (the whole network: chain, subnet 1,
// miners, a validator, its gateway, the explorer) on free loopback ports
// and returns what it printed once running; the devnet stops with the test.
func runDevnet(t *testing.T, ctx context.Context, home string) devnetInfo {
	t.Helper()
	devCtx, stop := context.WithCancel(ctx)
	done := make(chan int, 1)
	pr, pw := io.Pipe()
	go func() {
		code := runCLITo(t, devCtx, pw, "devnet", "--home", home, "--rpc-port", "0", "--p2p-port", "0",
			"--explorer-port", "0", "--gateway-port", "0", "--block-time", "300ms", "--tempo", "10", "--miners", "2",
			"--model", testkit.Model(t, "tiny", 1), "--status-every", "1h", "--output", "json")
		pw.Close()
		done <- code
	}()
	t.Cleanup(func() {
		stop()
		select {
		case code := <-done:
			if code != exitOK {
				t.Errorf("devnet exited with %d after Ctrl-C, want 0", code)
			}
		case <-time.After(30 * time.Second):
			t.Error("devnet did not stop within 30 s of cancellation")
		}
	})
	var info devnetInfo
	if err := json.NewDecoder(pr).Decode(&info); err != nil || info.ExplorerURL == "" || info.ChatURL == "" {
		t.Fatalf("devnet printed no explorer and chat links: %+v, %v", info, err)
	}
	go io.Copy(io.Discard, pr)
	return info
}

// TestDevnetInBrowser is the newcomer's path: run agora devnet, open the
// printed explorer link, watch the chain grow and subnet 1's miners earn,
// send a transfer from the CLI and find it on its page.
func TestDevnetInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a devnet and a browser")
	}
	home := t.TempDir()
	t.Setenv("AGORA_PASSWORD", devnetPassword)
	t.Setenv("AGORA_HOME", "")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	info := runDevnet(t, ctx, home)
	b := browser.New(t, browser.Desktop)

	// The height on the overview grows by itself (live.js), no reload.
	b.MustDo(30*time.Second, chromedp.Navigate(info.ExplorerURL+"/"))
	first := browser.Get(b, 10*time.Second, chromedp.Evaluate[int](`Number(document.querySelector("#height").textContent)`))
	if first < 1 {
		t.Fatalf("overview shows height %d", first)
	}
	b.WaitUntil(30*time.Second, fmt.Sprintf(`Number(document.querySelector("#height").textContent) > %d`, first+1))
	b.Screenshot("devnet-explorer-home")

	// Subnet 1's miners earn incentive once an epoch has scored them.
	incentive := `Array.from(document.querySelectorAll("tr[data-uid] td.incentive")).filter(td => parseFloat(td.textContent) > 0).length`
	earning := 0
	wait, stopWait := context.WithTimeout(ctx, 2*time.Minute)
	defer stopWait()
	err := poll.Until(wait, 2*time.Second, func() bool {
		if b.Do(20*time.Second, chromedp.Navigate(info.ExplorerURL+"/subnets/1")) != nil {
			return false
		}
		earning = browser.Get(b, 10*time.Second, chromedp.Evaluate[int](incentive))
		return earning > 0
	})
	if err != nil {
		t.Fatalf("no miner of subnet 1 shows non-zero incentive: %v", err)
	}
	b.Screenshot("devnet-explorer-subnet")

	// A transfer sent from the CLI appears on its page and on both accounts'.
	if out, code := runCLI(t, ctx, "keys", "new", "alice", "--home", home, "--output", "json"); code != exitOK {
		t.Fatalf("keys new: %d %s", code, out)
	}
	out, code := runCLI(t, ctx, "tx", "transfer", "--from", devnetFaucet, "alice", "3agr", "--home", home, "--node", info.RPC, "--output", "json")
	var tr txResult
	if err := json.Unmarshal([]byte(out), &tr); err != nil || code != exitOK || tr.Height == 0 {
		t.Fatalf("transfer: %d %q %v", code, out, err)
	}
	hash := strings.ToUpper(tr.Hash)
	b.MustDo(20*time.Second, chromedp.Navigate(info.ExplorerURL+"/txs/"+hash))
	if got := strings.ToUpper(strings.TrimSpace(b.Text(10*time.Second, "#tx-hash"))); got != hash {
		t.Fatalf("tx page shows hash %q, want %q", got, hash)
	}
	if page := b.Text(10*time.Second, "main"); !strings.Contains(page, "3 AGR") {
		t.Fatalf("tx page does not show the amount: %q", page)
	}
	b.Screenshot("devnet-explorer-tx")
	for _, who := range []string{info.Faucet.Address, keyAddress(t, home, "alice")} {
		b.MustDo(20*time.Second, chromedp.Navigate(info.ExplorerURL+"/accounts/"+who))
		b.WaitUntil(10*time.Second, fmt.Sprintf(`document.querySelector('tr[data-tx="%s"]') !== null`, hash))
	}
	b.Screenshot("devnet-explorer-account")

	// The printed chat link: its fragment carries the key and the explorer,
	// an answer streams, is paid for and its receipt verifies in the
	// browser; then again sealed end to end to a miner's on-chain key.
	b.MustDo(30*time.Second, chromedp.Navigate(info.ChatURL))
	b.WaitUntil(10*time.Second, `document.documentElement.dataset.ready === 'true' && !location.hash.includes('key=')`)
	ask := func(prompt string) string {
		t.Helper()
		n := browser.Get(b, 5*time.Second, chromedp.Evaluate[int](`document.querySelectorAll('.msg.assistant').length`))
		b.MustDo(10*time.Second, chromedp.SendKeys("#prompt", prompt), chromedp.Click("#send"))
		b.WaitUntil(90*time.Second, fmt.Sprintf(`(() => { const a = document.querySelectorAll('.msg.assistant'); return a.length === %d && !a[%d].querySelector('.meta.pending'); })()`, n+1, n))
		return browser.Get(b, 5*time.Second, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelectorAll('.msg.assistant')[%d].querySelector('.meta').textContent`, n)))
	}
	if line := ask("Hello, Agora"); !strings.Contains(line, "receipt verified") || !strings.Contains(line, "AGR") {
		t.Fatalf("plain answer's line %q: want a verified receipt and a cost", line)
	}
	b.Screenshot("devnet-chat-plain")
	b.MustDo(5*time.Second, chromedp.Click(".switch"))
	b.WaitUntil(5*time.Second, `document.querySelector('#e2e').checked`)
	b.MustDo(5*time.Second, chromedp.Evaluate[chromedp.Void](`document.querySelector('#new-chat').click()`))
	if line := ask("A secret for the miner only"); !strings.Contains(line, "receipt verified") || !strings.Contains(line, "end-to-end") {
		t.Fatalf("sealed answer's line %q: want a verified receipt, sealed end to end", line)
	}
	b.Screenshot("devnet-chat-e2e")
	b.NoProblems()
}

// keyAddress is the address of a key in home's keystore, as the CLI shows it.
func keyAddress(t *testing.T, home, name string) string {
	t.Helper()
	out, code := runCLI(t, context.Background(), "keys", "show", name, "--address", "--home", home, "--output", "json")
	var k struct {
		Address string `json:"address"`
	}
	if err := json.Unmarshal([]byte(out), &k); err != nil || code != exitOK || k.Address == "" {
		t.Fatalf("keys show %s: %d %q %v", name, code, out, err)
	}
	return k.Address
}
