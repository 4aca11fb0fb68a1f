//go:build !amd64 && !arm64

package engine

// q8Tile is q8TilePortable: no SIMD kernel here yet.
func q8Tile(p *q8Packed, g, nb int, a *q8Acts, tile, k int, out []float32, stride int) {
	q8TilePortable(p, g, nb, a, tile, k, out, stride)
}

func withoutVNNI() (restore func()) { return func() {} }

func withQ8AVX2() (restore func(), ok bool) { return func() {}, false }

// kTile is kTilePortable: no SIMD kernel here yet.
func kTile(p *kPacked, g, nb int, a *q8Acts, tile, k int, out []float32, stride int) {
	kTilePortable(p, g, nb, a, tile, k, out, stride)
}
