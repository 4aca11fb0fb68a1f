package miner

import (
	"context"
	"sync"
	"time"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/wire"
)

// ChainAllow admits signers registered on the subnet that hold a validator
// permit or stake, from a metagraph refreshed at most every refresh.
func ChainAllow(c *client.Client, netuid uint32, refresh time.Duration) wire.Allow {
	var mu sync.Mutex
	var fetched time.Time
	allowed := map[address.Address]bool{}
	return func(ctx context.Context, signer address.Address) bool {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(fetched) > refresh || (!allowed[signer] && time.Since(fetched) > refresh/10) {
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			mg, err := c.Metagraph(ctx, netuid, 0)
			cancel()
			if err == nil {
				clear(allowed)
				for uid, n := range mg.Neurons {
					if a, err := address.FromBytes(n.Hotkey); err == nil && (n.ValidatorPermit || mg.Stake[uid] > 0) {
						allowed[a] = true
					}
				}
				fetched = time.Now()
			}
		}
		return allowed[signer]
	}
}
