package explorer_test

import (
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/agoranet/agora/internal/testkit"
)

// BenchmarkChainPages measures each chain page's JSON twin against a live
// node (loopback RPC). Their cost does not grow with the chain: each makes
// a fixed number of RPC calls (docs/explorer.md), so the height the node
// has reached does not matter here.
func BenchmarkChainPages(b *testing.B) {
	n := startCpNet(b)
	alice := testkit.Addr(n.alice).String()
	for _, p := range []struct{ name, path string }{
		{"home", "/api/status"},
		{"blocks", "/api/blocks"},
		{"block", fmt.Sprintf("/api/blocks/%d", n.height)},
		{"tx", "/api/txs/" + n.transfer},
		{"account", "/api/accounts/" + alice},
		{"chain-validators", "/api/chain-validators"},
		{"search", "/api/search?q=" + n.transfer},
	} {
		b.Run(p.name, func(b *testing.B) {
			for b.Loop() {
				resp, err := http.Get(n.url + p.path)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("%s: %d", p.path, resp.StatusCode)
				}
			}
		})
	}
}
