// Package poll waits for a condition that nothing signals, checking it at
// an interval until it holds or the context ends.
package poll

import (
	"context"
	"time"
)

// Until checks cond now and then every interval until it returns true, or
// returns ctx's error.
func Until(ctx context.Context, interval time.Duration, cond func() bool) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}
