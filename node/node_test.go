package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/chain"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/client"
)

// childHomeEnv makes the test binary run a node instead of tests, so the
// crash test can SIGKILL a real node process.
const childHomeEnv = "AGORA_TEST_NODE_HOME"

func TestMain(m *testing.M) {
	if home := os.Getenv(childHomeEnv); home != "" {
		// The parent hands its bound RPC listener over as fd 3, so it
		// outlives each killed child and the port is never up for grabs.
		l, err := net.FileListener(os.NewFile(3, "rpc-listener"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "child node: rpc listener:", err)
			os.Exit(1)
		}
		n, err := Start(home, StartOptions{RPCListener: l})
		if err != nil {
			fmt.Fprintln(os.Stderr, "child node:", err)
			os.Exit(1)
		}
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM, os.Interrupt)
		<-ch
		n.Stop()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// listen binds a loopback listener on an ephemeral port for a node's RPC.
func listen(t *testing.T) *net.TCPListener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l.(*net.TCPListener)
}

func testKey(seed byte) (ed25519.PrivateKey, address.Address) {
	s := make([]byte, 32)
	s[0] = seed
	priv := ed25519.NewKeyFromSeed(s)
	return priv, address.FromPubKey(priv.Public().(ed25519.PublicKey))
}

// initTestHome makes a node home whose RPC is served on the returned
// listener (handed to Start) and whose P2P port the kernel picks.
func initTestHome(t *testing.T, funded address.Address) (home string, rpc *net.TCPListener) {
	t.Helper()
	home = t.TempDir()
	rpc = listen(t)
	err := Init(home, InitOptions{
		ChainID: "agora-test", Moniker: "test",
		Genesis:   chain.Genesis{Params: chain.DefaultParams(200), Devnet: true, Accounts: []chain.GenesisAccount{{Address: funded, Balance: 1_000_000_000_000}}},
		BlockTime: 200 * time.Millisecond,
		P2PAddr:   "tcp://127.0.0.1:0",
	})
	if err != nil {
		t.Fatal(err)
	}
	return home, rpc
}

func rpcURL(l net.Listener) string { return "http://" + l.Addr().String() }

func TestInitRefusesOverwrite(t *testing.T) {
	_, addr := testKey(1)
	home, _ := initTestHome(t, addr)
	err := Init(home, InitOptions{ChainID: "x", Genesis: chain.Genesis{Params: chain.DefaultParams(1000)}})
	if !errors.Is(err, ErrExists) {
		t.Fatalf("second Init err = %v, want ErrExists", err)
	}
}

func TestNodeTransferAndProvenQuery(t *testing.T) {
	alicePriv, alice := testKey(1)
	_, bob := testKey(2)
	home, rpc := initTestHome(t, alice)
	url := rpcURL(rpc)
	n, err := Start(home, StartOptions{RPCListener: rpc})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := n.WaitForHeight(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if n.RPCURL() != url {
		t.Fatalf("RPCURL %s, want %s", n.RPCURL(), url)
	}
	c, err := client.New(url)
	if err != nil {
		t.Fatal(err)
	}
	// Two transfers from one sender in quick succession: the second must use
	// the pending nonce and both must land.
	var hashes [][]byte
	for i := 0; i < 2; i++ {
		hash, err := c.SignAndSend(ctx, alicePriv, []*tx.Msg{tx.Transfer(bob, 1_000)}, client.SendOptions{})
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		hashes = append(hashes, hash)
	}
	for _, h := range hashes {
		if _, err := c.WaitTx(ctx, h); err != nil {
			t.Fatalf("wait tx %X: %v", h, err)
		}
	}

	acc, proof, err := c.Account(ctx, bob, true)
	if err != nil {
		t.Fatalf("proven account query: %v", err)
	}
	if acc.Balance != 2_000 {
		t.Fatalf("bob balance %d, want 2000", acc.Balance)
	}
	if proof == nil || proof.Header != proof.Height+1 || len(proof.AppHash) == 0 {
		t.Fatalf("bad proof report %+v", proof)
	}
	// Absence is provable too.
	_, never := testKey(77)
	empty, proof, err := c.Account(ctx, never, true)
	if err != nil || empty.Balance != 0 || proof == nil {
		t.Fatalf("non-membership query: %v %v %v", empty, proof, err)
	}
	s, _, err := c.Supply(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if s.Burned != 2*chain.DefaultParams(200).FeeTransfer || s.Minted == 0 {
		t.Fatalf("supply %+v", s)
	}
	// A transaction for another chain is refused with a clear code.
	raw, _ := tx.Sign(alicePriv, &tx.TxBody{ChainId: "elsewhere", Nonce: 2, Fee: 1_000_000, Msgs: []*tx.Msg{tx.Transfer(bob, 1)}})
	_, err = c.Broadcast(ctx, raw)
	var txErr *client.TxError
	if !errors.As(err, &txErr) || txErr.Code != tx.CodeWrongChain {
		t.Fatalf("wrong-chain tx: %v", err)
	}
}

// TestCrashRecovery SIGKILLs a node process while transactions flow, restarts
// it, and checks that it continues from the same state.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("starts node processes")
	}
	alicePriv, alice := testKey(1)
	_, bob := testKey(2)
	home, rpc := initTestHome(t, alice)
	c, err := client.New(rpcURL(rpc))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	var committed uint64 // bob's balance as confirmed before each kill
	var lastHeight int64
	nonce := uint64(0)
	for round := 0; round < 3; round++ {
		child := startChild(t, home, rpc)
		if err := c.WaitForHeight(ctx, lastHeight+2); err != nil {
			child.Process.Kill()
			t.Fatalf("round %d: node did not advance past %d after restart: %v", round, lastHeight, err)
		}
		// After a restart the committed state must be exactly what it was.
		acc, _, err := c.Account(ctx, bob, false)
		if err != nil {
			t.Fatal(err)
		}
		if acc.Balance < committed {
			t.Fatalf("round %d: bob has %d after restart, %d was committed", round, acc.Balance, committed)
		}
		committed = acc.Balance
		// Send a stream of transfers, then kill at a moment that falls mid-block.
		for i := 0; i < 20; i++ {
			n := nonce
			if pn, err := c.PendingNonce(ctx, alice); err == nil {
				n = pn
			}
			if _, err := c.SignAndSend(ctx, alicePriv, []*tx.Msg{tx.Transfer(bob, 10)}, client.SendOptions{Nonce: &n}); err == nil {
				nonce = n + 1
			}
			// Pace the stream so each round's kill lands at a different
			// point of the block cycle.
			select {
			case <-ctx.Done():
				t.Fatal(ctx.Err())
			case <-time.After(time.Duration(7+round*13) * time.Millisecond):
			}
		}
		h, err := c.Height(ctx)
		if err != nil {
			t.Fatal(err)
		}
		acc, _, err = c.Account(ctx, bob, false)
		if err != nil {
			t.Fatal(err)
		}
		committed, lastHeight = acc.Balance, h
		if err := child.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		child.Wait()
	}
	child := startChild(t, home, rpc)
	defer stopChild(child)
	if err := c.WaitForHeight(ctx, lastHeight+2); err != nil {
		t.Fatalf("final restart did not advance: %v", err)
	}
	acc, _, err := c.Account(ctx, bob, true)
	if err != nil {
		t.Fatal(err)
	}
	if acc.Balance < committed || acc.Balance%10 != 0 || acc.Balance == 0 {
		t.Fatalf("bob balance %d after crashes (committed before last kill: %d)", acc.Balance, committed)
	}
	alAcc, _, err := c.Account(ctx, alice, true)
	if err != nil {
		t.Fatal(err)
	}
	fee := chain.DefaultParams(200).FeeTransfer
	if want := uint64(1_000_000_000_000) - alAcc.Nonce*(10+fee); alAcc.Balance != want {
		t.Fatalf("alice balance %d with nonce %d, want %d: state diverged across crashes", alAcc.Balance, alAcc.Nonce, want)
	}
	if acc.Balance != alAcc.Nonce*10 {
		t.Fatalf("bob %d != alice's %d transfers × 10", acc.Balance, alAcc.Nonce)
	}
}

func startChild(t *testing.T, home string, rpc *net.TCPListener) *exec.Cmd {
	t.Helper()
	lf, err := rpc.File() // a duplicate descriptor: the parent keeps its own
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childHomeEnv+"="+home)
	cmd.ExtraFiles = []*os.File{lf}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("child stderr:\n%s", stderr.String())
		}
	})
	return cmd
}

func stopChild(cmd *exec.Cmd) {
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}
