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

// Get returns the buffered value, else the parent's. A buffered delete reads as absent.
func (c *Cache) Get(key []byte) ([]byte, error) {
	if v, ok := c.writes[string(key)]; ok {
		return v, nil
	}
	return c.parent.Get(key)
}

// Set buffers a write of a non-nil value.
func (c *Cache) Set(key, value []byte) error {
	if value == nil {
		value = []byte{}
	}
	c.writes[string(key)] = value
	return nil
}

// Delete buffers the removal of key (stored as a nil value: a tombstone).
func (c *Cache) Delete(key []byte) error {
	c.writes[string(key)] = nil
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
		v := c.writes[k]
		var err error
		if v == nil {
			err = dst.Delete([]byte(k))
		} else {
			err = dst.Set([]byte(k), v)
		}
		if err != nil {
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
func (w storeWriter) Delete(key []byte) error {
	_, _, err := w.s.tree.Remove(key)
	return err
}
