package testnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	cmtcfg "github.com/cometbft/cometbft/config"

	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/node"
)

// StopTimeout is how long a node gets to stop on SIGTERM before SIGKILL.
const StopTimeout = 10 * time.Second

// Network is a testnet whose nodes run as child processes of this one.
type Network struct {
	Dir      string
	Exe      string // the agora binary
	Manifest *Manifest
	// Wrap, when set, prefixes a node's command line (e.g. "ip netns exec
	// NS"); tests use it to place nodes in network namespaces.
	Wrap func(i int) []string

	mu    sync.Mutex
	procs []*proc
}

type proc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // exit status, set before done closes
}

// LogPath is node i's combined output.
func LogPath(home string) string { return filepath.Join(home, "node.log") }

// Open prepares the network of dir (built by Build) to run with exe.
func Open(dir, exe string) (*Network, error) {
	m, err := ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	return &Network{Dir: dir, Exe: exe, Manifest: m, procs: make([]*proc, len(m.Nodes))}, nil
}

// Client is a client of node i's RPC.
func (n *Network) Client(i int) (*client.Client, error) { return client.New(n.Manifest.Nodes[i].RPC) }

// StartAll starts every node that is not running and rewrites the manifest
// with their pids.
func (n *Network) StartAll() error {
	for i := range n.Manifest.Nodes {
		if n.Running(i) {
			continue
		}
		if err := n.StartNode(i); err != nil {
			return err
		}
	}
	return nil
}

// StartNode starts node i as `agora node start --home H`.
func (n *Network) StartNode(i int) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if p := n.procs[i]; p != nil {
		select {
		case <-p.done:
		default:
			return fmt.Errorf("node%d is already running (pid %d)", i, p.cmd.Process.Pid)
		}
	}
	home := n.Manifest.Nodes[i].Home
	logf, err := os.OpenFile(LogPath(home), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open node log: %w", err)
	}
	args := []string{n.Exe, "node", "start", "--home", home, "--log-level", "warn"}
	if n.Wrap != nil {
		args = append(n.Wrap(i), args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = childAttr()
	// Pdeathsig fires when the thread that forked the child exits; pin
	// this goroutine's thread for the fork so it is a live runtime thread.
	runtime.LockOSThread()
	err = cmd.Start()
	runtime.UnlockOSThread()
	if err != nil {
		logf.Close()
		return fmt.Errorf("start node%d: %w", i, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	n.procs[i] = p
	n.Manifest.Nodes[i].PID = cmd.Process.Pid
	return WriteManifest(n.Dir, n.Manifest)
}

// Running reports whether node i's process is alive.
func (n *Network) Running(i int) bool {
	n.mu.Lock()
	p := n.procs[i]
	n.mu.Unlock()
	if p == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Exited is closed when node i's current process has exited (nil if none).
func (n *Network) Exited(i int) <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.procs[i] == nil {
		return nil
	}
	return n.procs[i].done
}

// Kill sends SIGKILL to node i (kill -9: no shutdown, no flush) and waits
// until it is gone.
func (n *Network) Kill(i int) error { return n.stop(i, syscall.SIGKILL, StopTimeout) }

// StopNode asks node i to stop (SIGTERM), then kills it after StopTimeout.
func (n *Network) StopNode(i int) error { return n.stop(i, syscall.SIGTERM, StopTimeout) }

func (n *Network) stop(i int, sig syscall.Signal, grace time.Duration) error {
	n.mu.Lock()
	p := n.procs[i]
	n.mu.Unlock()
	if p == nil {
		return nil
	}
	select {
	case <-p.done:
		return nil
	default:
	}
	// The whole group: a wrapper (ip netns exec) and the node it runs.
	pid := p.cmd.Process.Pid
	if err := syscall.Kill(-pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal node%d: %w", i, err)
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		return nil
	case <-t.C:
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	<-p.done
	return nil
}

// Stop stops every node: SIGTERM to all at once, SIGKILL to whoever is
// left after StopTimeout.
func (n *Network) Stop() {
	var wg sync.WaitGroup
	for i := range n.Manifest.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = n.StopNode(i)
		}()
	}
	wg.Wait()
}

// LogTail is the end of node i's log, for error messages.
func (n *Network) LogTail(i int) string {
	raw, err := os.ReadFile(LogPath(n.Manifest.Nodes[i].Home))
	if err != nil {
		return ""
	}
	if len(raw) > 2000 {
		raw = raw[len(raw)-2000:]
	}
	return string(bytes.TrimSpace(raw))
}

// ErrExited is returned by waits on a node whose process died.
var ErrExited = errors.New("node process exited")

// Height is node i's latest height.
func (n *Network) Height(ctx context.Context, i int) (int64, error) {
	c, err := n.Client(i)
	if err != nil {
		return 0, err
	}
	return c.Height(ctx)
}

// WaitHeight waits until every node in which (all when nil) has reached h.
func (n *Network) WaitHeight(ctx context.Context, h int64, which ...int) error {
	if len(which) == 0 {
		for i := range n.Manifest.Nodes {
			which = append(which, i)
		}
	}
	for _, i := range which {
		if err := n.waitOne(ctx, i, h); err != nil {
			return err
		}
	}
	return nil
}

func (n *Network) waitOne(ctx context.Context, i int, h int64) error {
	c, err := n.Client(i)
	if err != nil {
		return err
	}
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	var last int64
	for {
		if got, err := c.Height(ctx); err == nil {
			last = got
			if got >= h {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node%d at height %d, waiting for %d: %w", i, last, h, ctx.Err())
		case <-n.Exited(i):
			return fmt.Errorf("node%d, waiting for height %d: %w:\n%s", i, h, ErrExited, n.LogTail(i))
		case <-t.C:
		}
	}
}

// BlockID is node i's block hash and the app hash in the header of block h
// (the state after h-1).
func (n *Network) BlockID(ctx context.Context, i int, h int64) (blockHash, appHash []byte, err error) {
	c, err := n.Client(i)
	if err != nil {
		return nil, nil, err
	}
	b, err := c.Block(ctx, h)
	if err != nil {
		return nil, nil, fmt.Errorf("node%d block %d: %w", i, h, err)
	}
	return b.BlockID.Hash, b.Block.AppHash, nil
}

// ErrFork is two nodes reporting different blocks or app hashes at one height.
var ErrFork = errors.New("nodes disagree")

// Agree checks that the nodes in which hold the same block and app hash at
// height h.
func (n *Network) Agree(ctx context.Context, h int64, which ...int) error {
	var first []byte
	var firstApp []byte
	for k, i := range which {
		bh, ah, err := n.BlockID(ctx, i, h)
		if err != nil {
			return err
		}
		if k == 0 {
			first, firstApp = bh, ah
			continue
		}
		if !bytes.Equal(bh, first) || !bytes.Equal(ah, firstApp) {
			return fmt.Errorf("%w at height %d: node%d block %X app %X, node%d block %X app %X", ErrFork, h, which[0], first, firstApp, i, bh, ah)
		}
	}
	return nil
}

// BindFailed reports whether node i's process has exited after failing to
// bind one of its ports (taken by another program since Build chose it).
func (n *Network) BindFailed(i int) bool {
	return n.Exited(i) != nil && !n.Running(i) && strings.Contains(n.LogTail(i), "address already in use")
}

// Rebind gives the stopped node i fresh loopback ports: its config, every
// other node's persistent peers and the manifest are rewritten. Running
// peers keep their old peer entry until restarted; node i dials them, so
// the connection is made anyway.
func (n *Network) Rebind(i int) error {
	if n.Running(i) {
		return fmt.Errorf("node%d is running", i)
	}
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	ni := &n.Manifest.Nodes[i]
	oldPeer := ni.NodeID + "@" + ni.P2P
	ni.RPC = "http://127.0.0.1:" + strconv.Itoa(ports[0])
	ni.P2P = "127.0.0.1:" + strconv.Itoa(ports[1])
	newPeer := ni.NodeID + "@" + ni.P2P
	for j, nj := range n.Manifest.Nodes {
		cfg, err := node.LoadConfig(nj.Home)
		if err != nil {
			return err
		}
		if j == i {
			cfg.RPC.ListenAddress = "tcp://" + strings.TrimPrefix(ni.RPC, "http://")
			cfg.P2P.ListenAddress = "tcp://" + ni.P2P
		} else {
			cfg.P2P.PersistentPeers = strings.ReplaceAll(cfg.P2P.PersistentPeers, oldPeer, newPeer)
		}
		if err := writeConfig(nj.Home, cfg); err != nil {
			return err
		}
	}
	return WriteManifest(n.Dir, n.Manifest)
}

// writeConfig writes a home's config.toml; CometBFT's writer panics on I/O
// errors, which stay inside this package.
func writeConfig(home string, cfg *cmtcfg.Config) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("write %s: %v", node.ConfigPath(home), r)
		}
	}()
	cmtcfg.WriteConfigFile(node.ConfigPath(home), cfg)
	return nil
}
