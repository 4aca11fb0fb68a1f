package tx

import (
	"crypto/sha256"
	"encoding/binary"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/agr"
)

// WeightsHash is what a validator commits to: sha256 over a domain tag, the
// hotkey, netuid, every (uid, value) pair, the salt and the version key.
// Validators compute it off chain and the chain checks reveals against it,
// so it lives here, with the other shared wire types.
func WeightsHash(hotkey address.Address, netuid uint32, uids, values []uint32, salt []byte, versionKey uint64) []byte {
	h := sha256.New()
	h.Write([]byte("agora/weights/v1\x00"))
	h.Write(hotkey[:])
	h.Write(be32(netuid))
	h.Write(be32(uint32(len(uids))))
	for i := range uids {
		h.Write(be32(uids[i]))
		h.Write(be32(values[i]))
	}
	h.Write(be32(uint32(len(salt))))
	h.Write(salt)
	h.Write(binary.BigEndian.AppendUint64(nil, versionKey))
	return h.Sum(nil)
}

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// EpochIndex numbers a subnet's tempos; an epoch runs when the index changes.
// The netuid offset staggers subnets so their epochs fall on different blocks.
//
// Block heights come from CometBFT as positive int64s and tempo is bounded,
// so height + netuid + 1 and tempo + 1 never wrap; the sums saturate anyway
// so that a hostile caller gets a wrong index, not a wrap.
func EpochIndex(netuid uint32, tempo, height uint64) uint64 {
	return agr.SaturatingAdd(height, uint64(netuid)+1) / agr.SaturatingAdd(tempo, 1)
}

// EpochDue reports whether a subnet's epoch runs at height.
func EpochDue(netuid uint32, tempo, height uint64) bool {
	return agr.SaturatingAdd(height, uint64(netuid)+1)%agr.SaturatingAdd(tempo, 1) == 0
}
