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
		{"Reader", unsafe.Sizeof(Reader{}), 256}, // 192 before its byte counters, start time and Origin.Params/Conn
	} {
		t.Logf("%s: %d bytes", c.name, c.size)
		if c.size > c.max {
			t.Errorf("%s is %d bytes, more than %d", c.name, c.size, c.max)
		}
	}
}
