//go:build faults

package testnet

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

// TestKillRestartLoop: round after round, kill -9 a different chain
// validator, let the chain move on without it, restart it and wait until
// every node agrees on a common block and app hash.
func TestKillRestartLoop(t *testing.T) {
	netw := startNet(t, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	for round := range 12 {
		victim := round % 4
		if err := netw.Kill(victim); err != nil {
			t.Fatal(err)
		}
		var others []int
		for i := range 4 {
			if i != victim {
				others = append(others, i)
			}
		}
		h := maxHeight(ctx, t, netw, others...)
		if err := netw.WaitHeight(ctx, h+3, others...); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if err := netw.StartNode(victim); err != nil {
			t.Fatal(err)
		}
		target := maxHeight(ctx, t, netw, others...) + 2
		if err := netw.WaitHeight(ctx, target); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if err := netw.Agree(ctx, target, 0, 1, 2, 3); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}
}

// TestRebindAfterPortTaken: another program takes a node's RPC port between
// Build and start (the race of handing ports to a child). The node dies
// binding it, is given fresh ports, and joins the chain. (About 50 s:
// the restarted node block-syncs before it switches to consensus.)
func TestRebindAfterPortTaken(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four node processes")
	}
	exe := agora(t)
	dir := t.TempDir()
	m, err := Build(dir, Options{ChainID: "agora-rebind", Validators: 4, BlockTime: testBlockTime, ScryptN: 1 << 4})
	if err != nil {
		t.Fatal(err)
	}
	squatter, err := net.Listen("tcp", strings.TrimPrefix(m.Nodes[1].RPC, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer squatter.Close()
	netw, err := Open(dir, exe)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for i := range netw.Manifest.Nodes {
			_ = netw.Kill(i)
		}
	})
	if err := netw.StartAll(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := netw.WaitHeight(ctx, 1); !errors.Is(err, ErrExited) {
		t.Fatalf("wait with a taken port: %v, want ErrExited", err)
	}
	if !netw.BindFailed(1) {
		t.Fatalf("node1 not reported as a bind failure:\n%s", netw.LogTail(1))
	}
	if err := netw.Rebind(1); err != nil {
		t.Fatal(err)
	}
	if err := netw.StartNode(1); err != nil {
		t.Fatal(err)
	}
	h := maxHeight(ctx, t, netw, 0, 2, 3) + 2
	if err := netw.WaitHeight(ctx, h); err != nil {
		t.Fatal(err)
	}
	if err := netw.Agree(ctx, h, 0, 1, 2, 3); err != nil {
		t.Fatal(err)
	}
	got, err := ReadManifest(dir)
	if err != nil || got.Nodes[1].RPC == m.Nodes[1].RPC {
		t.Fatalf("manifest not rewritten: %v %v", got, err)
	}
}
