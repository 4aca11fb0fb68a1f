package gateway

import (
	"encoding/json"
	"net/http"
)

// Info is what GET /v1/agora/info tells a client about this gateway: the
// chain and subnet it serves, its model and, if it knows one, an explorer.
// The chat page reads it to fill in what its link did not say; it labels
// the explorer as this gateway's word, since end-to-end sealing must not
// take miners' keys from the gateway alone.
type Info struct {
	ChainID  string `json:"chain_id"`
	Netuid   uint32 `json:"netuid"`
	Model    string `json:"model"`
	Explorer string `json:"explorer"`
}

// info answers GET /v1/agora/info. A paid gateway knows its chain and subnet
// from its payments, so those fill in what Config leaves empty.
func (g *Gateway) info(w http.ResponseWriter, _ *http.Request) {
	in := Info{ChainID: g.cfg.ChainID, Netuid: g.cfg.Netuid, Model: g.cfg.Model, Explorer: g.cfg.ExplorerURL}
	if p := g.cfg.Payments; p != nil {
		if in.ChainID == "" {
			in.ChainID = p.ChainID
		}
		if in.Netuid == 0 {
			in.Netuid = p.Netuid
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	_ = json.NewEncoder(w).Encode(in)
}
