package ident

import (
	"encoding/binary"
	"errors"
	"math"
)

// A minimal AMF0 (Adobe AMF0 spec, section 2) for RTMP commands: enough to
// write connect/createStream/play and to read _result/_error/onStatus.
// Objects decode to map[string]any, numbers to float64, null to nil.

var errAMF = errors.New("malformed AMF0")

// amfMaxDepth bounds nesting so hostile bytes cannot recurse without end.
const amfMaxDepth = 16

func amfAppend(b []byte, v any) []byte {
	switch v := v.(type) {
	case float64:
		b = append(b, 0x00)
		return binary.BigEndian.AppendUint64(b, math.Float64bits(v))
	case int:
		return amfAppend(b, float64(v))
	case bool:
		if v {
			return append(b, 0x01, 1)
		}
		return append(b, 0x01, 0)
	case string:
		b = append(b, 0x02)
		return amfAppendString(b, v)
	case nil:
		return append(b, 0x05)
	case amfObject:
		b = append(b, 0x03)
		for _, kv := range v {
			b = amfAppendString(b, kv.k)
			b = amfAppend(b, kv.v)
		}
		return append(b, 0, 0, 0x09)
	}
	panic("amf0: unsupported type")
}

func amfAppendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// amfObject keeps key order, which some servers care about.
type amfObject []struct {
	k string
	v any
}

// amfDecodeAll decodes every value in b.
func amfDecodeAll(b []byte) ([]any, error) {
	var out []any
	for len(b) > 0 {
		v, n, err := amfDecode(b, 0)
		if err != nil {
			return out, err
		}
		out = append(out, v)
		b = b[n:]
	}
	return out, nil
}

func amfDecode(b []byte, depth int) (any, int, error) {
	if len(b) == 0 || depth > amfMaxDepth {
		return nil, 0, errAMF
	}
	switch b[0] {
	case 0x00: // number
		if len(b) < 9 {
			return nil, 0, errAMF
		}
		return math.Float64frombits(binary.BigEndian.Uint64(b[1:])), 9, nil
	case 0x01: // boolean
		if len(b) < 2 {
			return nil, 0, errAMF
		}
		return b[1] != 0, 2, nil
	case 0x02: // string
		s, n, err := amfString(b[1:])
		return s, n + 1, err
	case 0x0C: // long string
		if len(b) < 5 {
			return nil, 0, errAMF
		}
		l := int(binary.BigEndian.Uint32(b[1:]))
		if l < 0 || len(b)-5 < l {
			return nil, 0, errAMF
		}
		return string(b[5 : 5+l]), 5 + l, nil
	case 0x03, 0x08: // object, ECMA array (with a 4-byte count we ignore)
		i := 1
		if b[0] == 0x08 {
			i = 5
			if len(b) < i {
				return nil, 0, errAMF
			}
		}
		m := map[string]any{}
		for {
			if len(b)-i >= 3 && b[i] == 0 && b[i+1] == 0 && b[i+2] == 0x09 {
				return m, i + 3, nil
			}
			k, n, err := amfString(b[i:])
			if err != nil {
				return nil, 0, err
			}
			i += n
			v, n, err := amfDecode(b[i:], depth+1)
			if err != nil {
				return nil, 0, err
			}
			i += n
			m[k] = v
		}
	case 0x0A: // strict array
		if len(b) < 5 {
			return nil, 0, errAMF
		}
		cnt := int(binary.BigEndian.Uint32(b[1:]))
		i := 5
		var arr []any
		for j := 0; j < cnt; j++ {
			v, n, err := amfDecode(b[i:], depth+1)
			if err != nil {
				return nil, 0, err
			}
			arr = append(arr, v)
			i += n
		}
		return arr, i, nil
	case 0x0B: // date: 8-byte number and 2-byte zone
		if len(b) < 11 {
			return nil, 0, errAMF
		}
		return math.Float64frombits(binary.BigEndian.Uint64(b[1:])), 11, nil
	case 0x05, 0x06: // null, undefined
		return nil, 1, nil
	}
	return nil, 0, errAMF
}

func amfString(b []byte) (string, int, error) {
	if len(b) < 2 {
		return "", 0, errAMF
	}
	l := int(binary.BigEndian.Uint16(b))
	if len(b)-2 < l {
		return "", 0, errAMF
	}
	return string(b[2 : 2+l]), 2 + l, nil
}
