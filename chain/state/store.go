// Package state is the chain's versioned Merkle store: a cosmos/iavl tree over
// goleveldb. One tree holds all state, so the app hash is the IAVL root and
// any key can be proven against it with an ICS-23 proof.
//
// Writes reach the tree only through Cache.Write, which applies them in sorted
// key order: an AVL tree's shape depends on insertion order, and every node
// must build the same tree to agree on the root.
//
// It is the one package that imports cosmos/iavl and the database; it must
// not import the application or anything above it. Clients check its proofs
// with chain/proof instead of linking it.
package state

import (
	"errors"
	"fmt"
	"os"

	dbm "github.com/cosmos/cosmos-db"
	"github.com/cosmos/iavl"
	idb "github.com/cosmos/iavl/db"
	ics23 "github.com/cosmos/ics23/go"
)

// KV is the read/write view every state transition works against.
type KV interface {
	Get(key []byte) ([]byte, error)
	Set(key, value []byte) error
	Delete(key []byte) error
}

// Store is the committed state plus the block being built on top of it.
type Store struct {
	db   dbm.DB
	tree *iavl.MutableTree
	// committed is the last saved version, read by CheckTx and queries so
	// they never observe a half-executed block.
	committed *iavl.ImmutableTree
	// keepRecent is how many past versions stay queryable; 0 keeps all.
	keepRecent int64
	cacheSize  int
	// exports pins versions being exported (state-sync snapshots).
	exports exports
}

// Options tune a Store.
type Options struct {
	// KeepRecent versions are kept for historical queries and proofs; older
	// ones are pruned after each commit. 0 keeps every version.
	KeepRecent int64
	// CacheSize is the IAVL node cache size in nodes.
	CacheSize int
}

// DefaultOptions keep a day of 1-second blocks queryable.
func DefaultOptions() Options { return Options{KeepRecent: 86_400, CacheSize: 200_000} }

// Open opens (creating if needed) the store in dir.
func Open(dir string, opts Options) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create state dir %s: %w", dir, err)
	}
	db, err := dbm.NewGoLevelDB("application", dir, nil)
	if err != nil {
		return nil, fmt.Errorf("open state db in %s: %w", dir, err)
	}
	s, err := newStore(db, opts)
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// OpenMem opens a store that lives only in memory, for tests and simulation.
func OpenMem(opts Options) (*Store, error) {
	return newStore(dbm.NewMemDB(), opts)
}

func newStore(db dbm.DB, opts Options) (*Store, error) {
	if opts.CacheSize <= 0 {
		opts.CacheSize = DefaultOptions().CacheSize
	}
	// Sync makes each saved version durable before Commit returns, so a crash
	// never leaves the app ahead of what it reported to CometBFT as lost.
	tree := iavl.NewMutableTree(idb.NewWrapper(db), opts.CacheSize, false, iavl.NewNopLogger(), iavl.SyncOption(true))
	if _, err := tree.Load(); err != nil {
		return nil, fmt.Errorf("load state tree: %w", err)
	}
	s := &Store{db: db, tree: tree, keepRecent: opts.KeepRecent, cacheSize: opts.CacheSize}
	if err := s.refreshCommitted(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Store) refreshCommitted() error {
	v := s.tree.Version()
	if v == 0 {
		s.committed = nil
		return nil
	}
	t, err := s.tree.GetImmutable(v)
	if err != nil {
		return fmt.Errorf("load committed version %d: %w", v, err)
	}
	s.committed = t
	return nil
}

// Close releases the database, first waiting for open exporters to close.
func (s *Store) Close() error {
	s.exports.closeAndWait()
	if err := s.tree.Close(); err != nil {
		s.db.Close()
		return fmt.Errorf("close state tree: %w", err)
	}
	return s.db.Close()
}

// Version is the last committed version (the block height).
func (s *Store) Version() int64 { return s.tree.Version() }

// Hash is the root hash of the last committed version.
func (s *Store) Hash() []byte { return s.tree.Hash() }

// WorkingHash is the root hash including writes not yet committed.
func (s *Store) WorkingHash() []byte { return s.tree.WorkingHash() }

// SetInitialVersion makes the first commit produce version v (genesis initial_height).
func (s *Store) SetInitialVersion(v uint64) { s.tree.SetInitialVersion(v) }

// Get reads the working state: committed plus this block's written caches.
func (s *Store) Get(key []byte) ([]byte, error) { return s.tree.Get(key) }

func (s *Store) set(key, value []byte) error {
	_, err := s.tree.Set(key, value)
	return err
}

// Committed is a read-only view of the last committed version.
func (s *Store) Committed() KVReader { return committedReader{s.committed} }

// Commit saves the working tree as a new version and prunes old versions.
func (s *Store) Commit() (hash []byte, version int64, err error) {
	hash, version, err = s.tree.SaveVersion()
	if err != nil {
		return nil, 0, fmt.Errorf("save state version: %w", err)
	}
	if err := s.refreshCommitted(); err != nil {
		return nil, 0, err
	}
	if s.keepRecent > 0 && version > s.keepRecent {
		// Prune in batches of 100 versions to amortize the work.
		// A version an exporter still reads is kept; a later batch
		// catches up, since pruning deletes everything up to its bound.
		to := version - s.keepRecent
		if low := s.exports.lowestPinned(); to%100 == 0 && (low == 0 || low > to) {
			if err := s.tree.DeleteVersionsTo(to); err != nil {
				return nil, 0, fmt.Errorf("prune versions to %d: %w", to, err)
			}
		}
	}
	return hash, version, nil
}

// Rollback discards uncommitted writes.
func (s *Store) Rollback() { s.tree.Rollback() }

// ErrVersionUnavailable is returned for queries of pruned or future versions.
var ErrVersionUnavailable = errors.New("version not available")

// Proven is a queried value with its ICS-23 proof against the version's root.
type Proven struct {
	Version int64
	Value   []byte // nil when the key is absent
	Proof   *ics23.CommitmentProof
	Root    []byte
}

// Query reads key at version (0 = latest committed), optionally with a
// membership or non-membership proof.
func (s *Store) Query(key []byte, version int64, prove bool) (Proven, error) {
	if version == 0 {
		version = s.tree.Version()
	}
	if version <= 0 || !s.tree.VersionExists(version) {
		return Proven{}, fmt.Errorf("%w: %d (latest %d)", ErrVersionUnavailable, version, s.tree.Version())
	}
	t, err := s.tree.GetImmutable(version)
	if err != nil {
		return Proven{}, fmt.Errorf("load version %d: %w", version, err)
	}
	val, err := t.Get(key)
	if err != nil {
		return Proven{}, fmt.Errorf("get %x at %d: %w", key, version, err)
	}
	out := Proven{Version: version, Value: val, Root: t.Hash()}
	if !prove {
		return out, nil
	}
	if val != nil {
		out.Proof, err = t.GetMembershipProof(key)
	} else {
		out.Proof, err = t.GetNonMembershipProof(key)
	}
	if err != nil {
		return Proven{}, fmt.Errorf("prove %x at %d: %w", key, version, err)
	}
	return out, nil
}

// View is a read-only view of version (0 = latest committed).
func (s *Store) View(version int64) (KVReader, int64, error) {
	if version == 0 {
		version = s.tree.Version()
	}
	if version <= 0 || !s.tree.VersionExists(version) {
		return nil, 0, fmt.Errorf("%w: %d (latest %d)", ErrVersionUnavailable, version, s.tree.Version())
	}
	t, err := s.tree.GetImmutable(version)
	if err != nil {
		return nil, 0, fmt.Errorf("load version %d: %w", version, err)
	}
	return committedReader{t}, version, nil
}

// KVReader is a read-only view.
type KVReader interface {
	Get(key []byte) ([]byte, error)
}

type committedReader struct{ t *iavl.ImmutableTree }

func (r committedReader) Get(key []byte) ([]byte, error) {
	if r.t == nil {
		return nil, nil
	}
	return r.t.Get(key)
}
