//go:build !amd64 && !arm64

package engine

// q4Tile is q4TilePortable: no SIMD kernel here yet.
func q4Tile(p *q4Packed, g, nb int, a *q8Acts, tile, k int, out []float32, stride int) {
	q4TilePortable(p, g, nb, a, tile, k, out, stride)
}
