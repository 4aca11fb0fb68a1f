package state

import (
	"errors"
	"fmt"
	"sync"

	"github.com/cosmos/iavl"
	idb "github.com/cosmos/iavl/db"
)

// Node is one node of an exported tree, in the depth-first post-order the
// export produces and an import must consume. Inner nodes have Height > 0
// and no value; leaves have Height 0 and a non-nil value.
type Node struct {
	Key     []byte
	Value   []byte
	Version int64
	Height  int8
}

// ErrExportDone ends an export stream.
var ErrExportDone = errors.New("export done")

// ErrClosed is returned by a closed store.
var ErrClosed = errors.New("state store closed")

// ErrNotEmpty is returned by Import on a store that already holds state.
var ErrNotEmpty = errors.New("state store is not empty")

// exports tracks exporters so pruning never deletes a version one is
// reading and Close waits for them; its fields are guarded by mu because an
// exporter is drained and closed on a goroutine other than the ABCI one.
type exports struct {
	mu     sync.Mutex
	pinned map[int64]int
	closed bool
	wg     sync.WaitGroup
}

func (e *exports) pin(v int64) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrClosed
	}
	if e.pinned == nil {
		e.pinned = make(map[int64]int)
	}
	e.pinned[v]++
	e.wg.Add(1)
	return nil
}

func (e *exports) unpin(v int64) {
	e.mu.Lock()
	if e.pinned[v]--; e.pinned[v] <= 0 {
		delete(e.pinned, v)
	}
	e.mu.Unlock()
	e.wg.Done()
}

// lowestPinned is the oldest version an exporter reads, or 0.
func (e *exports) lowestPinned() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	var low int64
	for v := range e.pinned {
		if low == 0 || v < low {
			low = v
		}
	}
	return low
}

// closeAndWait refuses new exports and waits for running ones to close.
func (e *exports) closeAndWait() {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	e.wg.Wait()
}

// Exporter streams the nodes of one committed version. It may be drained on
// any goroutine, since a committed version is immutable; it must be closed,
// and the store's Close waits until it is.
type Exporter struct {
	exp     *iavl.Exporter
	reader  *iavl.MutableTree
	version int64
	hash    []byte
	owner   *exports
	once    sync.Once
}

// Export starts streaming committed version. The version stays unpruned
// until the exporter is closed.
func (s *Store) Export(version int64) (*Exporter, error) {
	if version <= 0 || !s.tree.VersionExists(version) {
		return nil, fmt.Errorf("%w: %d (latest %d)", ErrVersionUnavailable, version, s.tree.Version())
	}
	if err := s.exports.pin(version); err != nil {
		return nil, err
	}
	// A tree of its own over the same database: the main tree's node cache
	// shares node objects with the working tree, which the next block
	// mutates while this export reads on another goroutine.
	reader := iavl.NewMutableTree(idb.NewWrapper(s.db), 10_000, true, iavl.NewNopLogger())
	t, err := reader.GetImmutable(version)
	if err == nil && t.Size() == 0 {
		err = errors.New("empty tree")
	}
	var exp *iavl.Exporter
	if err == nil {
		exp, err = t.Export()
	}
	if err != nil {
		reader.Close()
		s.exports.unpin(version)
		return nil, fmt.Errorf("export version %d: %w", version, err)
	}
	return &Exporter{exp: exp, reader: reader, version: version, hash: t.Hash(), owner: &s.exports}, nil
}

// Version is the exported version.
func (e *Exporter) Version() int64 { return e.version }

// Hash is the exported version's root hash (its app hash).
func (e *Exporter) Hash() []byte { return e.hash }

// Next returns the next node, or ErrExportDone after the last.
func (e *Exporter) Next() (Node, error) {
	n, err := e.exp.Next()
	if errors.Is(err, iavl.ErrorExportDone) {
		return Node{}, ErrExportDone
	}
	if err != nil {
		return Node{}, fmt.Errorf("export version %d: %w", e.version, err)
	}
	return Node{Key: n.Key, Value: n.Value, Version: n.Version, Height: n.Height}, nil
}

// Close stops the export and releases the version. Safe to call twice.
func (e *Exporter) Close() {
	e.once.Do(func() {
		e.exp.Close()
		e.reader.Close()
		e.owner.unpin(e.version)
	})
}

// Importer rebuilds a version from an export stream into an empty store.
// Nothing it adds is visible until Commit; Abort (or a failed Commit)
// leaves the store empty again.
type Importer struct {
	s       *Store
	imp     *iavl.Importer
	version int64
	done    bool
}

// Import starts rebuilding version into s, which must hold no state.
func (s *Store) Import(version int64) (*Importer, error) {
	if version <= 0 {
		return nil, fmt.Errorf("import version %d: must be positive", version)
	}
	if s.tree.Version() != 0 {
		return nil, fmt.Errorf("%w: at version %d", ErrNotEmpty, s.tree.Version())
	}
	imp, err := s.tree.Import(version)
	if err != nil {
		return nil, fmt.Errorf("import version %d: %w", version, err)
	}
	return &Importer{s: s, imp: imp, version: version}, nil
}

// Add feeds the next node. Nodes come from outside (a peer's snapshot), so
// their fields are checked here before IAVL sees them: its importer indexes
// by version and trusts heights.
func (im *Importer) Add(n Node) (err error) {
	if im.done {
		return errors.New("import already finished")
	}
	if n.Version <= 0 || n.Version > im.version {
		return fmt.Errorf("node version %d outside 1..%d", n.Version, im.version)
	}
	if n.Height < 0 {
		return fmt.Errorf("node height %d is negative", n.Height)
	}
	if n.Key == nil {
		return errors.New("node without key")
	}
	if n.Height == 0 && n.Value == nil {
		return errors.New("leaf without value")
	}
	if n.Height > 0 && n.Value != nil {
		return errors.New("inner node with a value")
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("import node: %v", r)
		}
	}()
	if err := im.imp.Add(&iavl.ExportNode{Key: n.Key, Value: n.Value, Version: n.Version, Height: n.Height}); err != nil {
		return fmt.Errorf("import node: %w", err)
	}
	return nil
}

// Commit makes the imported version the store's committed state and
// returns its root hash. The caller must check the hash against a trusted
// one and Reset the store on a mismatch.
func (im *Importer) Commit() (hash []byte, err error) {
	if im.done {
		return nil, errors.New("import already finished")
	}
	im.done = true
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("commit import: %v", r)
		}
		if err != nil {
			if rerr := im.s.Reset(); rerr != nil {
				err = errors.Join(err, rerr)
			}
		}
	}()
	if err := im.imp.Commit(); err != nil {
		return nil, fmt.Errorf("commit import of version %d: %w", im.version, err)
	}
	if err := im.s.refreshCommitted(); err != nil {
		return nil, err
	}
	if v := im.s.tree.Version(); v != im.version {
		return nil, fmt.Errorf("imported version %d, store at %d", im.version, v)
	}
	return im.s.tree.Hash(), nil
}

// Abort drops the import and empties the store of anything it flushed.
func (im *Importer) Abort() error {
	if im.done {
		return nil
	}
	im.done = true
	im.imp.Close()
	return im.s.Reset()
}

// Reset deletes all state and starts an empty tree: the way back from a
// rejected import, which may have flushed nodes to the database.
func (s *Store) Reset() error {
	if err := s.tree.Close(); err != nil {
		return fmt.Errorf("reset state: close tree: %w", err)
	}
	it, err := s.db.Iterator(nil, nil)
	if err != nil {
		return fmt.Errorf("reset state: %w", err)
	}
	var keys [][]byte
	for ; it.Valid(); it.Next() {
		keys = append(keys, append([]byte(nil), it.Key()...))
	}
	err = it.Error()
	it.Close()
	if err != nil {
		return fmt.Errorf("reset state: iterate: %w", err)
	}
	const batchSize = 10_000
	for len(keys) > 0 {
		n := min(batchSize, len(keys))
		b := s.db.NewBatch()
		for _, k := range keys[:n] {
			if err := b.Delete(k); err != nil {
				b.Close()
				return fmt.Errorf("reset state: %w", err)
			}
		}
		err := b.WriteSync()
		b.Close()
		if err != nil {
			return fmt.Errorf("reset state: write: %w", err)
		}
		keys = keys[n:]
	}
	s.tree = iavl.NewMutableTree(idb.NewWrapper(s.db), s.cacheSize, false, iavl.NewNopLogger(), iavl.SyncOption(true))
	if _, err := s.tree.Load(); err != nil {
		return fmt.Errorf("reset state: load: %w", err)
	}
	return s.refreshCommitted()
}

// Store is the store being imported into.
func (im *Importer) Store() *Store { return im.s }
