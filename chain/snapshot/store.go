package snapshot

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/agoranet/agora/chain/state"
	"github.com/agoranet/agora/internal/atomicfile"
)

// Info describes one stored snapshot, as ListSnapshots reports it.
type Info struct {
	Height   int64  `json:"height"`
	Format   uint32 `json:"format"`
	Chunks   uint32 `json:"chunks"`
	Hash     []byte `json:"hash"`
	Metadata []byte `json:"metadata"`
}

// Options tune a Store.
type Options struct {
	// Interval makes a snapshot after every Interval-th block; 0 never.
	Interval int64
	// Keep is how many snapshots stay on disk (default 2).
	Keep int
	// ChunkSize bounds a chunk's uncompressed bytes (default DefaultChunkSize).
	ChunkSize int
	Logger    *slog.Logger
}

// ErrNotFound is returned for a snapshot or chunk the store does not hold.
var ErrNotFound = errors.New("snapshot not found")

// Store keeps snapshots under a directory, one subdirectory each. A
// snapshot is written into a temporary directory that is renamed into place
// only when complete, so a crash never leaves a partial snapshot listed.
type Store struct {
	dir  string
	opts Options
	log  *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu   sync.Mutex // guards busy, closed and the directory's entries
	busy bool
	// closed refuses new snapshots once Close began.
	closed bool
}

const tmpPrefix = "tmp-"

// Open opens (creating) the store in dir and removes any snapshot a crash
// left half written.
func Open(dir string, o Options) (*Store, error) {
	if o.Keep <= 0 {
		o.Keep = 2
	}
	if o.ChunkSize <= 0 || o.ChunkSize > MaxChunkSize {
		o.ChunkSize = DefaultChunkSize
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Interval < 0 {
		return nil, fmt.Errorf("snapshot interval %d is negative", o.Interval)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create snapshot dir: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read snapshot dir: %w", err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tmpPrefix) {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return nil, fmt.Errorf("remove partial snapshot: %w", err)
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Store{dir: dir, opts: o, log: o.Logger, ctx: ctx, cancel: cancel}, nil
}

// Interval is the configured snapshot interval in blocks (0 = off).
func (s *Store) Interval() int64 { return s.opts.Interval }

// Close stops a snapshot in progress, waits for it, and refuses new ones.
// It must run before the state store closes.
func (s *Store) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}

// Wait blocks until no snapshot is being written.
func (s *Store) Wait() { s.wg.Wait() }

// AfterCommit starts a snapshot of height on the store's own goroutine when
// height is due and none is running. The export is opened here, on the
// committing goroutine, so the version is pinned against pruning before
// Commit returns; the goroutine only reads that immutable version.
func (s *Store) AfterCommit(st *state.Store, height int64) {
	if s.opts.Interval <= 0 || height%s.opts.Interval != 0 {
		return
	}
	s.mu.Lock()
	if s.busy || s.closed {
		busy := s.busy
		s.mu.Unlock()
		if busy {
			s.log.Warn("previous snapshot still being written; skipping", "height", height)
		}
		return
	}
	exp, err := st.Export(height)
	if err != nil {
		s.mu.Unlock()
		s.log.Error("snapshot export failed", "height", height, "err", err)
		return
	}
	s.busy = true
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			s.busy = false
			s.mu.Unlock()
		}()
		info, err := s.Create(s.ctx, exp)
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				s.log.Error("snapshot failed", "height", height, "err", err)
			}
			return
		}
		s.log.Info("snapshot written", "height", info.Height, "chunks", info.Chunks)
		if err := s.Prune(); err != nil {
			s.log.Error("prune snapshots", "err", err)
		}
	}()
}

func dirName(height int64, format uint32) string {
	return fmt.Sprintf("%020d-%d", height, format)
}

// Create writes the export as a snapshot and closes exp.
func (s *Store) Create(ctx context.Context, exp *state.Exporter) (Info, error) {
	defer exp.Close()
	height := exp.Version()
	final := filepath.Join(s.dir, dirName(height, Format))
	if _, err := os.Stat(final); err == nil {
		return Info{}, fmt.Errorf("snapshot %d already exists", height)
	}
	tmp, err := os.MkdirTemp(s.dir, tmpPrefix)
	if err != nil {
		return Info{}, fmt.Errorf("snapshot %d: %w", height, err)
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	meta := Metadata{Root: exp.Hash()}
	raw := make([]byte, 0, s.opts.ChunkSize+4096)
	flush := func() error {
		if len(meta.ChunkHashes) >= MaxChunks {
			return fmt.Errorf("snapshot %d: more than %d chunks", height, MaxChunks)
		}
		c, err := compress(raw)
		if err != nil {
			return err
		}
		if err := writeSynced(filepath.Join(tmp, strconv.Itoa(len(meta.ChunkHashes))), c); err != nil {
			return err
		}
		meta.ChunkHashes = append(meta.ChunkHashes, sha256.Sum256(c))
		raw = raw[:0]
		return nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return Info{}, err
		}
		n, err := exp.Next()
		if errors.Is(err, state.ErrExportDone) {
			break
		}
		if err != nil {
			return Info{}, err
		}
		raw = appendNode(raw, n)
		if len(raw) >= s.opts.ChunkSize {
			if err := flush(); err != nil {
				return Info{}, fmt.Errorf("snapshot %d: %w", height, err)
			}
		}
	}
	if len(raw) > 0 || len(meta.ChunkHashes) == 0 {
		if err := flush(); err != nil {
			return Info{}, fmt.Errorf("snapshot %d: %w", height, err)
		}
	}
	md := meta.Encode()
	info := Info{Height: height, Format: Format, Chunks: uint32(len(meta.ChunkHashes)), Hash: Hash(md), Metadata: md}
	b, err := json.Marshal(info)
	if err != nil {
		return Info{}, err
	}
	if err := atomicfile.Replace(filepath.Join(tmp, "snapshot.json"), b, 0o600); err != nil {
		return Info{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.Rename(tmp, final); err != nil {
		return Info{}, fmt.Errorf("snapshot %d: %w", height, err)
	}
	if err := atomicfile.SyncDir(s.dir); err != nil {
		return Info{}, fmt.Errorf("snapshot %d: %w", height, err)
	}
	return info, nil
}

func writeSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// List returns the stored snapshots, newest first.
func (s *Store) List() ([]Info, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.list()
}

func (s *Store) list() ([]Info, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("read snapshot dir: %w", err)
	}
	var out []Info
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), tmpPrefix) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.dir, e.Name(), "snapshot.json"))
		if err != nil {
			s.log.Warn("unreadable snapshot", "dir", e.Name(), "err", err)
			continue
		}
		var in Info
		if err := json.Unmarshal(b, &in); err != nil || e.Name() != dirName(in.Height, in.Format) {
			s.log.Warn("corrupt snapshot listing", "dir", e.Name())
			continue
		}
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Height > out[j].Height })
	return out, nil
}

// LoadChunk returns chunk index of the snapshot at height in format, or
// ErrNotFound.
func (s *Store) LoadChunk(height int64, format uint32, index uint32) ([]byte, error) {
	if height <= 0 || index >= MaxChunks {
		return nil, ErrNotFound
	}
	s.mu.Lock()
	defer s.mu.Unlock() // held so pruning cannot remove the file mid-read
	p := filepath.Join(s.dir, dirName(height, format), strconv.FormatUint(uint64(index), 10))
	fi, err := os.Stat(p)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() > MaxChunkSize {
		return nil, ErrNotFound
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("load chunk: %w", err)
	}
	return b, nil
}

// Prune removes all but the newest Keep snapshots.
func (s *Store) Prune() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	all, err := s.list()
	if err != nil {
		return err
	}
	for i := s.opts.Keep; i < len(all); i++ {
		if err := os.RemoveAll(filepath.Join(s.dir, dirName(all[i].Height, all[i].Format))); err != nil {
			return fmt.Errorf("prune snapshot %d: %w", all[i].Height, err)
		}
	}
	return nil
}

// Bytes is the total size of a stored snapshot's chunks.
func (s *Store) Bytes(height int64, format uint32) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ents, err := os.ReadDir(filepath.Join(s.dir, dirName(height, format)))
	if err != nil {
		return 0, fmt.Errorf("%w: %d: %v", ErrNotFound, height, err)
	}
	var n int64
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			return 0, err
		}
		n += fi.Size()
	}
	return n, nil
}
