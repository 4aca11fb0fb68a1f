// Package snapshot makes, keeps and restores state-sync snapshots of the
// chain's one IAVL tree, the application half of CometBFT's state sync.
//
// A snapshot of height H is the export stream of version H (depth-first
// post-order nodes) cut into chunks. Each chunk is independently
// zlib-compressed and holds whole nodes, so a restoring node verifies and
// imports chunk by chunk without buffering the stream. The metadata lists
// every chunk's sha256; the snapshot hash is the sha256 of the metadata.
// Neither is trusted on its own: a joining node accepts a restore only when
// the imported root equals the app hash CometBFT's light client verified.
//
// Serving and making snapshots reads committed, immutable versions and is
// not a state transition, so it may run on a goroutine; restoring runs in
// the ABCI calls and is deterministic.
package snapshot

import (
	"bytes"
	"compress/zlib"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/agoranet/agora/chain/state"
)

// Format is the only snapshot format this version makes and restores.
const Format uint32 = 1

const (
	// DefaultChunkSize bounds a chunk's uncompressed bytes, which also bounds
	// its compressed size well under CometBFT's 16 MiB chunk message.
	DefaultChunkSize = 8 << 20
	// MaxChunkSize is the largest decompressed chunk a restore accepts; a
	// chunk that inflates past it is a decompression bomb.
	MaxChunkSize = 16 << 20
	// MaxChunks is the most chunks a snapshot may have (CometBFT's default
	// max_snapshot_chunks); with 8 MiB chunks that is far beyond any state.
	MaxChunks = 100_000
	// MaxHeight bounds an offered height: IAVL's importer allocates per
	// version, so an absurd height must not reach it.
	MaxHeight = 1 << 30
)

var metaMagic = []byte("agora-snapshot\x01")

// ErrBadMetadata marks undecodable or inconsistent snapshot metadata.
var ErrBadMetadata = errors.New("bad snapshot metadata")

// ErrBadChunk marks a chunk whose content cannot be decoded.
var ErrBadChunk = errors.New("bad snapshot chunk")

// Metadata is what a snapshot's ABCI metadata field carries.
type Metadata struct {
	// Root is the exported version's root hash as the maker saw it; the
	// restorer checks the trusted app hash, not this.
	Root        []byte
	ChunkHashes [][32]byte
}

// Encode serializes m.
func (m Metadata) Encode() []byte {
	b := append([]byte(nil), metaMagic...)
	b = binary.AppendUvarint(b, uint64(len(m.Root)))
	b = append(b, m.Root...)
	b = binary.AppendUvarint(b, uint64(len(m.ChunkHashes)))
	for _, h := range m.ChunkHashes {
		b = append(b, h[:]...)
	}
	return b
}

// DecodeMetadata parses metadata from a peer.
func DecodeMetadata(b []byte) (Metadata, error) {
	if !bytes.HasPrefix(b, metaMagic) {
		return Metadata{}, fmt.Errorf("%w: no magic", ErrBadMetadata)
	}
	b = b[len(metaMagic):]
	n, k := binary.Uvarint(b)
	if k <= 0 || n > 64 || uint64(len(b)-k) < n {
		return Metadata{}, fmt.Errorf("%w: root", ErrBadMetadata)
	}
	m := Metadata{Root: append([]byte(nil), b[k:k+int(n)]...)}
	b = b[k+int(n):]
	c, k := binary.Uvarint(b)
	if k <= 0 || c == 0 || c > MaxChunks {
		return Metadata{}, fmt.Errorf("%w: chunk count", ErrBadMetadata)
	}
	b = b[k:]
	if uint64(len(b)) != c*32 {
		return Metadata{}, fmt.Errorf("%w: %d bytes of hashes for %d chunks", ErrBadMetadata, len(b), c)
	}
	m.ChunkHashes = make([][32]byte, c)
	for i := range m.ChunkHashes {
		copy(m.ChunkHashes[i][:], b[i*32:])
	}
	return m, nil
}

// Hash is the snapshot hash of encoded metadata.
func Hash(metadata []byte) []byte {
	h := sha256.Sum256(metadata)
	return h[:]
}

// appendNode encodes one node record: height, version, key, and for a leaf
// its value.
func appendNode(b []byte, n state.Node) []byte {
	b = append(b, byte(n.Height))
	b = binary.AppendUvarint(b, uint64(n.Version))
	b = binary.AppendUvarint(b, uint64(len(n.Key)))
	b = append(b, n.Key...)
	if n.Height == 0 {
		b = binary.AppendUvarint(b, uint64(len(n.Value)))
		b = append(b, n.Value...)
	}
	return b
}

// compress zlib-compresses one chunk.
func compress(raw []byte) ([]byte, error) {
	var buf bytes.Buffer
	w, err := zlib.NewWriterLevel(&buf, zlib.BestSpeed)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(raw); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// DecodeChunk inflates a chunk and parses its nodes. Bytes come from a peer:
// every length is checked against what remains, and the inflated size is
// capped.
func DecodeChunk(chunk []byte) ([]state.Node, error) {
	zr, err := zlib.NewReader(bytes.NewReader(chunk))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadChunk, err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, MaxChunkSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: inflate: %v", ErrBadChunk, err)
	}
	if len(raw) > MaxChunkSize {
		return nil, fmt.Errorf("%w: inflates past %d bytes", ErrBadChunk, MaxChunkSize)
	}
	if err := zr.Close(); err != nil {
		return nil, fmt.Errorf("%w: inflate: %v", ErrBadChunk, err)
	}
	var nodes []state.Node
	for len(raw) > 0 {
		var n state.Node
		n.Height = int8(raw[0])
		raw = raw[1:]
		v, k := binary.Uvarint(raw)
		if k <= 0 || v == 0 || v > MaxHeight {
			return nil, fmt.Errorf("%w: node version", ErrBadChunk)
		}
		n.Version = int64(v)
		raw = raw[k:]
		if n.Key, raw, err = bytesField(raw); err != nil {
			return nil, err
		}
		if n.Height == 0 {
			if n.Value, raw, err = bytesField(raw); err != nil {
				return nil, err
			}
		}
		nodes = append(nodes, n)
	}
	if len(nodes) == 0 {
		return nil, fmt.Errorf("%w: no nodes", ErrBadChunk)
	}
	return nodes, nil
}

func bytesField(b []byte) (field, rest []byte, err error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || uint64(len(b)-k) < n {
		return nil, nil, fmt.Errorf("%w: field length", ErrBadChunk)
	}
	// Non-nil even when empty: IAVL tells leaves from inner nodes by it.
	return append([]byte{}, b[k:k+int(n)]...), b[k+int(n):], nil
}
