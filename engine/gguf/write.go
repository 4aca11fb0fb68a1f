package gguf

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
)

// Writer assembles a GGUF file: metadata and tensors, written in the order added.
type Writer struct {
	kv      []KV
	tensors []TensorInfo
	data    [][]byte
	align   uint64
}

// NewWriter starts an empty file with the default alignment.
func NewWriter() *Writer { return &Writer{align: DefaultAlignment} }

// Set adds a metadata value of any type (arrays included, nested or not).
func (w *Writer) Set(k string, v Value) { w.kv = append(w.kv, KV{k, v}) }

// Str, U32, U64, I32, F32, Bool add scalar metadata.
func (w *Writer) Str(k, v string) { w.kv = append(w.kv, KV{k, Value{Type: TypeString, S: v}}) }

// U32 adds a uint32 metadata value.
func (w *Writer) U32(k string, v uint32) {
	w.kv = append(w.kv, KV{k, Value{Type: TypeUint32, U: uint64(v)}})
}

// U64 adds a uint64 metadata value.
func (w *Writer) U64(k string, v uint64) { w.kv = append(w.kv, KV{k, Value{Type: TypeUint64, U: v}}) }

// I32 adds an int32 metadata value.
func (w *Writer) I32(k string, v int32) {
	w.kv = append(w.kv, KV{k, Value{Type: TypeInt32, I: int64(v), U: uint64(uint32(v))}})
}

// F32 adds a float32 metadata value.
func (w *Writer) F32(k string, v float32) {
	w.kv = append(w.kv, KV{k, Value{Type: TypeFloat32, F: float64(v)}})
}

// Bool adds a bool metadata value.
func (w *Writer) Bool(k string, v bool) { w.kv = append(w.kv, KV{k, Value{Type: TypeBool, B: v}}) }

// Strs adds a string array.
func (w *Writer) Strs(k string, v []string) {
	arr := make([]Value, len(v))
	for i, s := range v {
		arr[i] = Value{Type: TypeString, S: s}
	}
	w.kv = append(w.kv, KV{k, Value{Type: TypeArray, ArrayType: TypeString, Array: arr}})
}

// F32s adds a float32 array.
func (w *Writer) F32s(k string, v []float32) {
	arr := make([]Value, len(v))
	for i, f := range v {
		arr[i] = Value{Type: TypeFloat32, F: float64(f)}
	}
	w.kv = append(w.kv, KV{k, Value{Type: TypeArray, ArrayType: TypeFloat32, Array: arr}})
}

// I32s adds an int32 array.
func (w *Writer) I32s(k string, v []int32) {
	arr := make([]Value, len(v))
	for i, x := range v {
		arr[i] = Value{Type: TypeInt32, I: int64(x), U: uint64(uint32(x))}
	}
	w.kv = append(w.kv, KV{k, Value{Type: TypeArray, ArrayType: TypeInt32, Array: arr}})
}

// Tensor adds a tensor with raw bytes already in the type's layout.
func (w *Writer) Tensor(name string, t TensorType, dims []uint64, data []byte) error {
	ti := TensorInfo{Name: name, Dims: dims, Type: t}
	be, bb, ok := t.BlockSize()
	if !ok {
		return fmt.Errorf("tensor %q: unsupported type %s", name, t)
	}
	if dims[0]%uint64(be) != 0 {
		return fmt.Errorf("tensor %q: row of %d not a multiple of %d", name, dims[0], be)
	}
	ti.Size = ti.Elements() / uint64(be) * uint64(bb)
	if uint64(len(data)) != ti.Size {
		return fmt.Errorf("tensor %q: %d bytes, want %d", name, len(data), ti.Size)
	}
	var off uint64
	if n := len(w.tensors); n > 0 {
		last := w.tensors[n-1]
		off = alignUp(last.Offset+last.Size, w.align)
	}
	ti.Offset = off
	w.tensors = append(w.tensors, ti)
	w.data = append(w.data, data)
	return nil
}

// WriteFile writes the file atomically (temp file, then rename).
func (w *Writer) WriteFile(path string) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := w.write(bw); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

type countWriter struct {
	w io.Writer
	n uint64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += uint64(n)
	return n, err
}

func (w *Writer) write(out io.Writer) error {
	cw := &countWriter{w: out}
	le := binary.LittleEndian
	put := func(v any) error { return binary.Write(cw, le, v) }
	putStr := func(s string) error {
		if err := put(uint64(len(s))); err != nil {
			return err
		}
		_, err := io.WriteString(cw, s)
		return err
	}
	var putVal func(v Value) error
	putVal = func(v Value) error {
		switch v.Type {
		case TypeUint8, TypeInt8:
			return put(uint8(v.U))
		case TypeBool:
			b := uint8(0)
			if v.B {
				b = 1
			}
			return put(b)
		case TypeUint16, TypeInt16:
			return put(uint16(v.U))
		case TypeUint32, TypeInt32:
			return put(uint32(v.U))
		case TypeFloat32:
			return put(math.Float32bits(float32(v.F)))
		case TypeUint64, TypeInt64:
			return put(v.U)
		case TypeFloat64:
			return put(math.Float64bits(v.F))
		case TypeString:
			return putStr(v.S)
		case TypeArray:
			if err := put(uint32(v.ArrayType)); err != nil {
				return err
			}
			if err := put(uint64(len(v.Array))); err != nil {
				return err
			}
			for _, e := range v.Array {
				if err := putVal(e); err != nil {
					return err
				}
			}
			return nil
		}
		return fmt.Errorf("unknown value type %d", v.Type)
	}
	for _, x := range []any{uint32(Magic), uint32(Version), uint64(len(w.tensors)), uint64(len(w.kv))} {
		if err := put(x); err != nil {
			return err
		}
	}
	for _, kv := range w.kv {
		if err := putStr(kv.Key); err != nil {
			return err
		}
		if err := put(uint32(kv.Value.Type)); err != nil {
			return err
		}
		if err := putVal(kv.Value); err != nil {
			return err
		}
	}
	for _, t := range w.tensors {
		if err := putStr(t.Name); err != nil {
			return err
		}
		if err := put(uint32(len(t.Dims))); err != nil {
			return err
		}
		for _, d := range t.Dims {
			if err := put(d); err != nil {
				return err
			}
		}
		if err := put(uint32(t.Type)); err != nil {
			return err
		}
		if err := put(t.Offset); err != nil {
			return err
		}
	}
	pad := func(to uint64) error {
		_, err := cw.Write(make([]byte, to-cw.n))
		return err
	}
	start := alignUp(cw.n, w.align)
	if err := pad(start); err != nil {
		return err
	}
	for i, t := range w.tensors {
		if err := pad(start + t.Offset); err != nil {
			return err
		}
		if _, err := cw.Write(w.data[i]); err != nil {
			return err
		}
	}
	return nil
}
