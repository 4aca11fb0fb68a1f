package state

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/agoranet/agora/chain/tx"
)

// ErrCorrupt marks a stored record that does not decode: no transaction
// can write one, so the chain modules treat it as a broken invariant.
var ErrCorrupt = errors.New("stored record does not decode")

// GetRecord reads the protobuf record at key into m; found is false when
// the key is absent. Every chain module reads its records through it.
func GetRecord(kv KVReader, key []byte, m proto.Message) (found bool, err error) {
	raw, err := kv.Get(key)
	if err != nil {
		return false, fmt.Errorf("read %x: %w", key, err)
	}
	if raw == nil {
		return false, nil
	}
	if err := proto.Unmarshal(raw, m); err != nil {
		return false, fmt.Errorf("%w: %x: %v", ErrCorrupt, key, err)
	}
	return true, nil
}

// SetRecord writes m at key in the chain's one deterministic encoding.
func SetRecord(kv KV, key []byte, m proto.Message) error {
	raw, err := tx.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode %x: %w", key, err)
	}
	return kv.Set(key, raw)
}
