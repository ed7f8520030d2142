package amf0

import (
	"errors"
	"reflect"
	"testing"
)

var roundTrip = []struct {
	name string
	in   []any
}{
	{"connect", []any{"connect", 1.0, Object{{"app", "live"}, {"tcUrl", "rtmp://h/live"}, {"fpad", false}}}},
	{"null and undefined", []any{"createStream", 2.0, Null{}, Undefined{}}},
	{"strict array", []any{[]any{"avc1", "hvc1", 3.0}}},
	{"nested", []any{Object{{"a", Object{{"b", Object{{"c", true}}}}}}}},
	{"empty string and object", []any{"", Object(nil)}},
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range roundTrip {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode(Encode(tc.in...))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.in) {
				t.Errorf("got %#v, want %#v", got, tc.in)
			}
		})
	}
}

func TestECMAArrayDecodesAsObject(t *testing.T) {
	got, err := Decode(Encode("onMetaData", ECMAArray{{"width", 320.0}}))
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := got[1].(Object); !ok || o.Get("width") != 320.0 {
		t.Errorf("got %#v", got)
	}
}

var bad = []struct {
	name string
	in   []byte
	want error
}{
	{"truncated number", []byte{0, 1, 2}, ErrShort},
	{"string longer than input", []byte{2, 0xff, 0xff, 'a'}, ErrShort},
	{"unknown marker", []byte{0x42}, ErrBadValue},
	{"object without end", []byte{3, 0, 1, 'k', 0, 0, 0, 0, 0, 0, 0, 0, 0}, ErrShort},
	{"strict array count lies", []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 5}, ErrShort},
	{"long string count lies", []byte{0x0c, 0x7f, 0xff, 0xff, 0xff}, ErrShort},
}

func TestDecodeRejects(t *testing.T) {
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Decode(tc.in); !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestDeepNestingIsRefused(t *testing.T) {
	var b []byte
	for i := 0; i < 1000; i++ {
		b = append(b, 3, 0, 1, 'k')
	}
	if _, err := Decode(b); !errors.Is(err, ErrTooDeep) {
		t.Errorf("err = %v, want ErrTooDeep", err)
	}
}

func FuzzDecode(f *testing.F) {
	for _, tc := range roundTrip {
		f.Add(Encode(tc.in...))
	}
	for _, tc := range bad {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		vals, err := Decode(b)
		if err != nil {
			return
		}
		// What decodes must encode and decode to the same values.
		again, err := Decode(Encode(vals...))
		if err != nil {
			t.Fatalf("re-decoding %#v: %v", vals, err)
		}
		if len(again) != len(vals) {
			t.Fatalf("%d values became %d", len(vals), len(again))
		}
	})
}
