// Package amf0 encodes and decodes AMF0 values (Action Message Format,
// Adobe's "AMF 0 File Format Specification"), the encoding of RTMP commands
// and of FLV script tags such as onMetaData. The decoder reads untrusted
// bytes: it bounds nesting and never allocates more than the input holds.
package amf0

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Type markers (AMF0 spec section 2.1).
const (
	markerNumber      = 0x00
	markerBoolean     = 0x01
	markerString      = 0x02
	markerObject      = 0x03
	markerMovieClip   = 0x04
	markerNull        = 0x05
	markerUndefined   = 0x06
	markerReference   = 0x07
	markerECMAArray   = 0x08
	markerObjectEnd   = 0x09
	markerStrictArray = 0x0a
	markerDate        = 0x0b
	markerLongString  = 0x0c
	markerUnsupported = 0x0d
	markerXMLDocument = 0x0f
	markerTypedObject = 0x10
)

// MaxDepth bounds object nesting, so a hostile peer cannot exhaust the stack.
const MaxDepth = 32

// Errors of Decode.
var (
	ErrShort    = errors.New("amf0: value truncated")
	ErrTooDeep  = errors.New("amf0: objects nested too deeply")
	ErrBadValue = errors.New("amf0: unsupported type marker")
)

// Null is the AMF0 null value. Undefined is the AMF0 undefined value.
type (
	Null      struct{}
	Undefined struct{}
)

// Property is one key/value of an Object.
type Property struct {
	Key   string
	Value any
}

// Object is an AMF0 object or ECMA array with its keys in wire order.
type Object []Property

// ECMAArray is an AMF0 ECMA array (encoded with marker 0x08); onMetaData uses it.
type ECMAArray []Property

// Get returns the value of key, or nil.
func (o Object) Get(key string) any {
	for _, p := range o {
		if p.Key == key {
			return p.Value
		}
	}
	return nil
}

// String returns the string value of key, or "".
func (o Object) String(key string) string {
	s, _ := o.Get(key).(string)
	return s
}

// Number returns the number value of key and whether it is one.
func (o Object) Number(key string) (float64, bool) {
	n, ok := o.Get(key).(float64)
	return n, ok
}

// Decode reads every value in buf. Values are float64, bool, string, Object
// (objects and ECMA arrays), []any (strict arrays), Null, Undefined.
func Decode(buf []byte) ([]any, error) {
	var out []any
	for len(buf) > 0 {
		v, n, err := decodeValue(buf, 0)
		if err != nil {
			return out, err
		}
		out = append(out, v)
		buf = buf[n:]
	}
	return out, nil
}

// DecodeOne reads one value and returns it with the number of bytes used.
func DecodeOne(buf []byte) (any, int, error) { return decodeValue(buf, 0) }

func decodeValue(buf []byte, depth int) (any, int, error) {
	if len(buf) < 1 {
		return nil, 0, ErrShort
	}
	if depth > MaxDepth {
		return nil, 0, ErrTooDeep
	}
	switch buf[0] {
	case markerNumber:
		if len(buf) < 9 {
			return nil, 0, ErrShort
		}
		return math.Float64frombits(binary.BigEndian.Uint64(buf[1:9])), 9, nil
	case markerBoolean:
		if len(buf) < 2 {
			return nil, 0, ErrShort
		}
		return buf[1] != 0, 2, nil
	case markerString:
		s, n, err := decodeString(buf[1:])
		return s, n + 1, err
	case markerLongString, markerXMLDocument:
		if len(buf) < 5 {
			return nil, 0, ErrShort
		}
		l := int(binary.BigEndian.Uint32(buf[1:5]))
		if l < 0 || len(buf)-5 < l {
			return nil, 0, ErrShort
		}
		return string(buf[5 : 5+l]), 5 + l, nil
	case markerNull:
		return Null{}, 1, nil
	case markerUndefined, markerUnsupported:
		return Undefined{}, 1, nil
	case markerReference:
		if len(buf) < 3 {
			return nil, 0, ErrShort
		}
		return Undefined{}, 3, nil
	case markerDate:
		if len(buf) < 11 {
			return nil, 0, ErrShort
		}
		return math.Float64frombits(binary.BigEndian.Uint64(buf[1:9])), 11, nil
	case markerObject:
		o, n, err := decodeProps(buf[1:], depth)
		return o, n + 1, err
	case markerTypedObject:
		_, n, err := decodeString(buf[1:])
		if err != nil {
			return nil, 0, err
		}
		o, m, err := decodeProps(buf[1+n:], depth)
		return o, 1 + n + m, err
	case markerECMAArray:
		// The count is a hint only: encoders get it wrong, so read to the end marker.
		if len(buf) < 5 {
			return nil, 0, ErrShort
		}
		o, n, err := decodeProps(buf[5:], depth)
		return o, n + 5, err
	case markerStrictArray:
		if len(buf) < 5 {
			return nil, 0, ErrShort
		}
		count := binary.BigEndian.Uint32(buf[1:5])
		pos := 5
		// Every value takes at least one byte: a count beyond the input is a lie.
		if uint64(count) > uint64(len(buf)-pos) {
			return nil, 0, ErrShort
		}
		arr := make([]any, 0, count)
		for i := uint32(0); i < count; i++ {
			v, n, err := decodeValue(buf[pos:], depth+1)
			if err != nil {
				return nil, 0, err
			}
			arr = append(arr, v)
			pos += n
		}
		return arr, pos, nil
	}
	return nil, 0, fmt.Errorf("%w 0x%02x", ErrBadValue, buf[0])
}

func decodeString(buf []byte) (string, int, error) {
	if len(buf) < 2 {
		return "", 0, ErrShort
	}
	l := int(binary.BigEndian.Uint16(buf))
	if len(buf)-2 < l {
		return "", 0, ErrShort
	}
	return string(buf[2 : 2+l]), 2 + l, nil
}

// decodeProps reads key/value pairs up to the object end marker (an empty key
// followed by 0x09).
func decodeProps(buf []byte, depth int) (Object, int, error) {
	var o Object
	pos := 0
	for {
		if len(buf)-pos >= 3 && buf[pos] == 0 && buf[pos+1] == 0 && buf[pos+2] == markerObjectEnd {
			return o, pos + 3, nil
		}
		k, n, err := decodeString(buf[pos:])
		if err != nil {
			return nil, 0, err
		}
		pos += n
		if len(buf)-pos == 0 && k == "" {
			// Some encoders end an ECMA array without the end marker.
			return o, pos, nil
		}
		v, n, err := decodeValue(buf[pos:], depth+1)
		if err != nil {
			return nil, 0, err
		}
		pos += n
		o = append(o, Property{k, v})
	}
}

// Append encodes v after buf. v is one of float64, int, uint32, bool,
// string, Object, ECMAArray, []any, Null, Undefined, nil (null).
func Append(buf []byte, v any) []byte {
	switch v := v.(type) {
	case float64:
		return AppendNumber(buf, v)
	case int:
		return AppendNumber(buf, float64(v))
	case uint32:
		return AppendNumber(buf, float64(v))
	case bool:
		b := byte(0)
		if v {
			b = 1
		}
		return append(buf, markerBoolean, b)
	case string:
		return AppendString(buf, v)
	case Object:
		buf = append(buf, markerObject)
		return appendProps(buf, v)
	case ECMAArray:
		buf = append(buf, markerECMAArray)
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(v)))
		return appendProps(buf, Object(v))
	case []any:
		buf = append(buf, markerStrictArray)
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(v)))
		for _, e := range v {
			buf = Append(buf, e)
		}
		return buf
	case Undefined:
		return append(buf, markerUndefined)
	default: // Null, nil and anything unknown
		return append(buf, markerNull)
	}
}

// AppendNumber encodes a number.
func AppendNumber(buf []byte, n float64) []byte {
	buf = append(buf, markerNumber)
	return binary.BigEndian.AppendUint64(buf, math.Float64bits(n))
}

// AppendString encodes a string, as a long string past 65535 bytes.
func AppendString(buf []byte, s string) []byte {
	if len(s) > math.MaxUint16 {
		buf = append(buf, markerLongString)
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(s)))
		return append(buf, s...)
	}
	buf = append(buf, markerString)
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(s)))
	return append(buf, s...)
}

func appendProps(buf []byte, o Object) []byte {
	for _, p := range o {
		k := p.Key
		if len(k) > math.MaxUint16 {
			k = k[:math.MaxUint16]
		}
		buf = binary.BigEndian.AppendUint16(buf, uint16(len(k)))
		buf = append(buf, k...)
		buf = Append(buf, p.Value)
	}
	return append(buf, 0, 0, markerObjectEnd)
}

// Encode encodes values one after the other.
func Encode(values ...any) []byte {
	var buf []byte
	for _, v := range values {
		buf = Append(buf, v)
	}
	return buf
}
