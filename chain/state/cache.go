package state

import (
	"sort"
)

// Cache buffers writes over a parent view so a transaction (or a whole
// CheckTx pending view) either lands entirely or not at all.
type Cache struct {
	parent KVReader
	writes map[string][]byte
}

// NewCache starts an empty write buffer over parent.
func NewCache(parent KVReader) *Cache {
	return &Cache{parent: parent, writes: make(map[string][]byte)}
}

// Get returns the buffered value, else the parent's.
func (c *Cache) Get(key []byte) ([]byte, error) {
	if v, ok := c.writes[string(key)]; ok {
		return v, nil
	}
	return c.parent.Get(key)
}

// Set buffers a write. Values must not be nil (deletion is not needed yet).
func (c *Cache) Set(key, value []byte) error {
	c.writes[string(key)] = value
	return nil
}

// Discard drops every buffered write.
func (c *Cache) Discard() { clear(c.writes) }

// Len is the number of buffered keys.
func (c *Cache) Len() int { return len(c.writes) }

// WriteTo flushes the buffered writes into dst in sorted key order, then empties the cache.
func (c *Cache) WriteTo(dst KV) error {
	keys := make([]string, 0, len(c.writes))
	for k := range c.writes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := dst.Set([]byte(k), c.writes[k]); err != nil {
			return err
		}
	}
	c.Discard()
	return nil
}

// Block is the store's writable view for one block: transaction caches are
// written into it, and Flush moves everything into the tree in sorted order.
type Block struct {
	*Cache
	store *Store
}

// NewBlock starts a block's write buffer over the store's working tree.
func (s *Store) NewBlock() *Block {
	return &Block{Cache: NewCache(s.tree), store: s}
}

// Flush writes the block's buffer into the IAVL working tree.
func (b *Block) Flush() error { return b.Cache.WriteTo(storeWriter{b.store}) }

type storeWriter struct{ s *Store }

func (w storeWriter) Get(key []byte) ([]byte, error) { return w.s.Get(key) }
func (w storeWriter) Set(key, value []byte) error    { return w.s.set(key, value) }
