package testnet

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	cmtcfg "github.com/cometbft/cometbft/config"

	"github.com/agoranet/agora/node"
)

// ip runs one ip(8) command.
func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// unixRPC reads a node's RPC over its unix socket: the node lives in a
// network namespace the test process is not in, the socket's file is shared.
type unixRPC struct{ hc *http.Client }

func newUnixRPC(sock string) unixRPC {
	return unixRPC{hc: &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}}
}

func (u unixRPC) get(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://rpc"+path, nil)
	if err != nil {
		return err
	}
	resp, err := u.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var env struct {
		Result json.RawMessage `json:"result"`
		Error  json.RawMessage `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		return err
	}
	if len(env.Error) > 0 && string(env.Error) != "null" {
		return fmt.Errorf("rpc %s: %s", path, env.Error)
	}
	return json.Unmarshal(env.Result, v)
}

func (u unixRPC) height(ctx context.Context) (int64, error) {
	var st struct {
		SyncInfo struct {
			H string `json:"latest_block_height"`
		} `json:"sync_info"`
	}
	if err := u.get(ctx, "/status", &st); err != nil {
		return 0, err
	}
	return strconv.ParseInt(st.SyncInfo.H, 10, 64)
}

func (u unixRPC) block(ctx context.Context, h int64) (string, error) {
	var b struct {
		ID struct {
			Hash string `json:"hash"`
		} `json:"block_id"`
		Block struct {
			Header struct {
				AppHash string `json:"app_hash"`
			} `json:"header"`
		} `json:"block"`
	}
	if err := u.get(ctx, "/block?height="+strconv.FormatInt(h, 10), &b); err != nil {
		return "", err
	}
	return b.ID.Hash + "/" + b.Block.Header.AppHash, nil
}

// TestPartitionTwoTwo: four chain validators, two in each of two network
// namespaces joined by one veth pair. Cutting the link leaves each side
// with half the voting power: neither may produce a block, and no two nodes
// may report different blocks at any height. Healed, the chain resumes.
func TestPartitionTwoTwo(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four node processes in network namespaces")
	}
	exe := agora(t)
	suffix := strconv.Itoa(os.Getpid() % 100000)
	nsA, nsB := "agtA"+suffix, "agtB"+suffix
	if err := ip("netns", "add", nsA); err != nil {
		t.Skipf("network namespaces not permitted here (needs root or CAP_NET_ADMIN): %v", err)
	}
	t.Cleanup(func() { _ = ip("netns", "del", nsA) })
	if err := ip("netns", "add", nsB); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ip("netns", "del", nsB) })
	vA, vB := "agva"+suffix, "agvb"+suffix
	addrs := map[string]string{nsA: "10.213.7.1", nsB: "10.213.7.2"}
	for _, cmd := range [][]string{
		{"link", "add", vA, "netns", nsA, "type", "veth", "peer", "name", vB, "netns", nsB},
		{"-n", nsA, "addr", "add", addrs[nsA] + "/24", "dev", vA},
		{"-n", nsB, "addr", "add", addrs[nsB] + "/24", "dev", vB},
		{"-n", nsA, "link", "set", vA, "up"}, {"-n", nsB, "link", "set", vB, "up"},
		{"-n", nsA, "link", "set", "lo", "up"}, {"-n", nsB, "link", "set", "lo", "up"},
	} {
		if err := ip(cmd...); err != nil {
			t.Fatal(err)
		}
	}
	// Unix socket paths are short; t.TempDir's can be too long.
	dir, err := os.MkdirTemp("", "agt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	m, err := Build(dir, Options{ChainID: "agora-split", Validators: 4, BlockTime: testBlockTime, ScryptN: 1 << 4})
	if err != nil {
		t.Fatal(err)
	}
	nsOf := func(i int) string {
		if i < 2 {
			return nsA
		}
		return nsB
	}
	// Rewire every node: P2P on its namespace's address, RPC on a socket.
	for i, ni := range m.Nodes {
		m.Nodes[i].P2P = net.JoinHostPort(addrs[nsOf(i)], strconv.Itoa(26000+i))
		m.Nodes[i].RPC = "unix://" + filepath.Join(ni.Home, "rpc.sock")
	}
	for i, ni := range m.Nodes {
		cfg, err := node.LoadConfig(ni.Home)
		if err != nil {
			t.Fatal(err)
		}
		cfg.P2P.ListenAddress = "tcp://" + ni.P2P
		cfg.RPC.ListenAddress = ni.RPC
		var peers []string
		for j, p := range m.Nodes {
			if j != i {
				peers = append(peers, p.NodeID+"@"+p.P2P)
			}
		}
		cfg.P2P.PersistentPeers = strings.Join(peers, ",")
		// Short redial, so the healed link is found again quickly.
		cfg.P2P.PersistentPeersMaxDialPeriod = time.Second
		cmtcfg.WriteConfigFile(node.ConfigPath(ni.Home), cfg)
	}
	if err := WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	netw, err := Open(dir, exe)
	if err != nil {
		t.Fatal(err)
	}
	netw.Wrap = func(i int) []string { return []string{"ip", "netns", "exec", nsOf(i)} }
	t.Cleanup(func() {
		for i := range m.Nodes {
			_ = netw.Kill(i)
		}
		if t.Failed() {
			for i := range m.Nodes {
				t.Logf("node%d log:\n%s", i, netw.LogTail(i))
			}
		}
	})
	if err := netw.StartAll(); err != nil {
		t.Fatal(err)
	}
	rpcs := make([]unixRPC, 4)
	for i, ni := range m.Nodes {
		rpcs[i] = newUnixRPC(strings.TrimPrefix(ni.RPC, "unix://"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	heights := func() []int64 {
		hs := make([]int64, 4)
		for i, r := range rpcs {
			hs[i], _ = r.height(ctx)
		}
		return hs
	}
	waitAll := func(h int64) {
		t.Helper()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			hs := heights()
			if min(hs[0], hs[1], hs[2], hs[3]) >= h {
				return
			}
			select {
			case <-ctx.Done():
				t.Fatalf("waiting for height %d: heights %v", h, hs)
			case <-tick.C:
			}
		}
	}
	noFork := func(upTo int64) {
		t.Helper()
		for h := int64(1); h <= upTo; h++ {
			seen := map[string]int{}
			for i, r := range rpcs {
				id, err := r.block(ctx, h)
				if err != nil {
					continue // this node has not got there
				}
				seen[id] = i
			}
			if len(seen) > 1 {
				t.Fatalf("fork at height %d: %v", h, seen)
			}
		}
	}
	waitAll(3)
	if err := ip("-n", nsA, "link", "set", vA, "down"); err != nil {
		t.Fatal(err)
	}
	split := slicesMax(heights())
	window := time.NewTimer(16 * testBlockTime)
	tick := time.NewTicker(testBlockTime)
	defer tick.Stop()
	last := split
watch:
	for {
		select {
		case <-window.C:
			break watch
		case <-tick.C:
			last = slicesMax(heights())
		}
	}
	if last > split+1 {
		t.Fatalf("a half of the network advanced from %d to %d while split", split, last)
	}
	noFork(last)
	if err := ip("-n", nsA, "link", "set", vA, "up"); err != nil {
		t.Fatal(err)
	}
	waitAll(last + 3)
	noFork(last + 3)
}

func slicesMax(hs []int64) int64 {
	var m int64
	for _, h := range hs {
		m = max(m, h)
	}
	return m
}
