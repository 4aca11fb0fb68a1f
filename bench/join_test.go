package bench

import (
	"context"
	"testing"
	"time"
)

// TestJoinSmall runs the join benchmark shrunk to seconds: both joins must
// reach the chain, and the state-synced node must not hold block 1.
func TestJoinSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three nodes and waits for state sync discovery")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := Join(ctx, JoinConfig{Blocks: 30, Accounts: 200})
	if err != nil {
		t.Fatal(err)
	}
	if res.StateSyncBase <= 1 || res.SnapshotChunks == 0 || res.SnapshotBytes == 0 || res.ReplaySecs <= 0 {
		t.Fatalf("implausible result %+v", res)
	}
}
