package snapshot

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/agoranet/agora/chain/state"
)

var (
	// ErrFormat marks a snapshot in a format this version cannot restore.
	ErrFormat = errors.New("unknown snapshot format")
	// ErrChunkHash marks a chunk whose bytes do not match the metadata: the
	// sender lied or the transfer broke, so it is refetched.
	ErrChunkHash = errors.New("snapshot chunk hash mismatch")
	// ErrAppHash marks a snapshot that imported cleanly to a root other than
	// the trusted app hash.
	ErrAppHash = errors.New("restored root differs from the trusted app hash")
)

// CheckOffer validates an offered snapshot's description against what the
// node was asked to restore; trusted is the light-client-verified app hash.
func CheckOffer(in Info, trusted []byte) (Metadata, error) {
	if in.Format != Format {
		return Metadata{}, fmt.Errorf("%w: %d", ErrFormat, in.Format)
	}
	if in.Height <= 0 || in.Height > MaxHeight {
		return Metadata{}, fmt.Errorf("%w: height %d", ErrBadMetadata, in.Height)
	}
	if len(trusted) != sha256.Size {
		return Metadata{}, fmt.Errorf("%w: trusted app hash is %d bytes", ErrBadMetadata, len(trusted))
	}
	if !bytes.Equal(Hash(in.Metadata), in.Hash) {
		return Metadata{}, fmt.Errorf("%w: hash does not match metadata", ErrBadMetadata)
	}
	m, err := DecodeMetadata(in.Metadata)
	if err != nil {
		return Metadata{}, err
	}
	if uint32(len(m.ChunkHashes)) != in.Chunks {
		return Metadata{}, fmt.Errorf("%w: %d chunks offered, metadata lists %d", ErrBadMetadata, in.Chunks, len(m.ChunkHashes))
	}
	return m, nil
}

// Restorer imports one offered snapshot, chunk by chunk in order, into an
// empty state store.
type Restorer struct {
	info    Info
	meta    Metadata
	trusted []byte
	imp     *state.Importer
	next    uint32
}

// NewRestorer checks the offer and starts the import into st.
func NewRestorer(st *state.Store, in Info, trusted []byte) (*Restorer, error) {
	m, err := CheckOffer(in, trusted)
	if err != nil {
		return nil, err
	}
	imp, err := st.Import(in.Height)
	if err != nil {
		return nil, err
	}
	return &Restorer{info: in, meta: m, trusted: append([]byte(nil), trusted...), imp: imp}, nil
}

// Info is the snapshot being restored.
func (r *Restorer) Info() Info { return r.info }

// Next is the index of the chunk Apply expects.
func (r *Restorer) Next() uint32 { return r.next }

// Apply imports chunk index. It returns done after the last chunk, once the
// imported root matched the trusted hash. ErrChunkHash leaves the restorer
// waiting for the same chunk; any other error means the snapshot is bad,
// and the store was emptied (the restorer is finished).
func (r *Restorer) Apply(index uint32, chunk []byte) (done bool, err error) {
	if index != r.next {
		return false, r.fail(fmt.Errorf("%w: chunk %d, expected %d", ErrBadChunk, index, r.next))
	}
	if sha256.Sum256(chunk) != r.meta.ChunkHashes[index] {
		return false, fmt.Errorf("%w: chunk %d", ErrChunkHash, index)
	}
	nodes, err := DecodeChunk(chunk)
	if err != nil {
		return false, r.fail(fmt.Errorf("chunk %d: %w", index, err))
	}
	for _, n := range nodes {
		if err := r.imp.Add(n); err != nil {
			return false, r.fail(fmt.Errorf("%w: chunk %d: %v", ErrBadChunk, index, err))
		}
	}
	r.next++
	if int(r.next) < len(r.meta.ChunkHashes) {
		return false, nil
	}
	root, err := r.imp.Commit()
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrBadChunk, err)
	}
	if !bytes.Equal(root, r.trusted) {
		err := fmt.Errorf("%w: got %X, trusted %X", ErrAppHash, root, r.trusted)
		if rerr := r.imp.Store().Reset(); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return false, err
	}
	return true, nil
}

func (r *Restorer) fail(err error) error {
	if aerr := r.imp.Abort(); aerr != nil {
		return errors.Join(err, aerr)
	}
	return err
}

// Abort drops an unfinished restore, leaving the store empty.
func (r *Restorer) Abort() error { return r.imp.Abort() }
