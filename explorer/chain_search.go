package explorer

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/agoranet/agora/client"
)

// searchResult is where a search leads: GET /api/search?q= answers it, GET
// /search redirects to its URL.
type searchResult struct {
	Kind string `json:"kind"` // block, tx, account or subnet
	URL  string `json:"url"`
}

// searchHelp is the search page shown for an empty query.
type searchHelp struct{}

func (e *Explorer) searchRoutes() {
	e.mux.HandleFunc("GET /search", func(w http.ResponseWriter, r *http.Request) {
		if strings.TrimSpace(r.URL.Query().Get("q")) == "" {
			e.serveHTML(w, r, "search", func(*http.Request) (any, error) { return searchHelp{}, nil })
			return
		}
		var failed error // the loader's own error, before run wraps it
		data, _, err := e.run(r, func(r *http.Request) (any, error) {
			d, err := e.search(r)
			failed = err
			return d, err
		})
		if err != nil {
			e.serveHTML(w, r, "search", func(*http.Request) (any, error) { return nil, failed })
			return
		}
		http.Redirect(w, r, data.(*searchResult).URL, http.StatusSeeOther)
	})
	e.mux.HandleFunc("GET /api/search", func(w http.ResponseWriter, r *http.Request) { e.serveJSON(w, r, e.search) })
}

var (
	hexHash     = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)
	subnetQuery = regexp.MustCompile(`^(?i)(?:subnet\s*|sn?\s*|netuid\s*)(\d+)$`)
)

// search resolves a query: a height, a transaction hash, an address or a
// subnet ("subnet 3", "s3", "sn3").
func (e *Explorer) search(r *http.Request) (any, error) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	ctx, c := r.Context(), e.cfg.Chain
	switch {
	case q == "":
		return nil, BadRequestf("search for something: a block height, a transaction hash, an agora1… address or a subnet (\"subnet 1\")")
	case isDigits(q):
		h, err := strconv.ParseInt(q, 10, 64)
		if err != nil || h < 1 {
			return nil, BadRequestf("%q is not a block height: heights start at 1", q)
		}
		tip, err := c.Height(ctx)
		if err != nil {
			return nil, err
		}
		if h > tip {
			return nil, fmt.Errorf("block %d is not committed yet: the chain is at height %d: %w", h, tip, ErrNotFound)
		}
		return &searchResult{Kind: "block", URL: fmt.Sprintf("/blocks/%d", h)}, nil
	case hexHash.MatchString(q):
		hash, _ := parseTxHash(q)
		if _, err := c.Tx(ctx, hash); err != nil {
			if isNotFound(err) {
				return nil, fmt.Errorf("no transaction %X on this chain (block hashes are not searched: search a block by its height): %w", hash, ErrNotFound)
			}
			return nil, err
		}
		return &searchResult{Kind: "tx", URL: fmt.Sprintf("/txs/%X", hash)}, nil
	case strings.HasPrefix(strings.ToLower(q), "agora1"):
		a, err := parseAddress(q)
		if err != nil {
			return nil, err
		}
		return &searchResult{Kind: "account", URL: "/accounts/" + a.String()}, nil
	}
	if m := subnetQuery.FindStringSubmatch(q); m != nil {
		n, err := strconv.ParseUint(m[1], 10, 32)
		if err != nil {
			return nil, BadRequestf("%q is not a subnet number", m[1])
		}
		if _, err := c.Subnet(ctx, uint32(n), false); err != nil {
			if errors.Is(err, client.ErrNoSubnet) {
				return nil, fmt.Errorf("there is no subnet %d: %w", n, ErrNotFound)
			}
			return nil, err
		}
		return &searchResult{Kind: "subnet", URL: fmt.Sprintf("/subnets/%d", n)}, nil
	}
	return nil, BadRequestf("nothing to look up for %q: search a block height (42), a transaction hash (64 hex digits), an address (agora1…) or a subnet (subnet 1, or s1)", q)
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}
