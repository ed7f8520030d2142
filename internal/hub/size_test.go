package hub

import (
	"testing"
	"unsafe"
)

// TestSizes records the fixed cost of a frame and of a reader so a change
// that bloats them is noticed (docs/hub.md quotes these).
func TestSizes(t *testing.T) {
	for _, c := range []struct {
		name      string
		size, max uintptr
	}{
		{"Frame", unsafe.Sizeof(Frame{}), 256},
		{"Reader", unsafe.Sizeof(Reader{}), 192},
	} {
		t.Logf("%s: %d bytes", c.name, c.size)
		if c.size > c.max {
			t.Errorf("%s is %d bytes, more than %d", c.name, c.size, c.max)
		}
	}
}
