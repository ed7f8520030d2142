package api

import (
	"testing"
	"time"
)

// TestSendOptions: startSendRtp's parameters as ZLMediaKit's clients send
// them, and the refusals.
func TestSendOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    params
		es   bool
		pt   uint8
		wait time.Duration
		code int // 0: accepted
	}{
		{"defaults: PS, pt 96", params{"app": "a", "stream": "s", "ssrc": "100000001"}, false, 96, 0, 0},
		{"use_ps=0 is raw ES", params{"ssrc": "1", "use_ps": "0"}, true, 96, 0, 0},
		{"type=0 is raw ES", params{"ssrc": "1", "type": "0"}, true, 96, 0, 0},
		{"use_ps wins over type", params{"ssrc": "1", "type": "0", "use_ps": "1"}, false, 96, 0, 0},
		{"pt and close_delay_ms", params{"ssrc": "1", "pt": "98", "close_delay_ms": "2500"}, false, 98, 2500 * time.Millisecond, 0},
		{"largest SSRC", params{"ssrc": "4294967295"}, false, 96, 0, 0},
		{"SSRC past 32 bits", params{"ssrc": "4294967296"}, false, 0, 0, CodeInvalidArgs},
		{"hex SSRC", params{"ssrc": "0x10"}, false, 0, 0, CodeInvalidArgs},
		{"pt out of range", params{"ssrc": "1", "pt": "128"}, false, 0, 0, CodeInvalidArgs},
		{"src_port out of range", params{"ssrc": "1", "src_port": "70000"}, false, 0, 0, CodeInvalidArgs},
		{"type=2 (TS)", params{"ssrc": "1", "type": "2"}, false, 0, 0, CodeInvalidArgs},
		{"type=7", params{"ssrc": "1", "type": "7"}, false, 0, 0, CodeInvalidArgs},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := sendOptions(tc.p)
			if tc.code != 0 {
				if e, ok := err.(*apiError); !ok || e.code != tc.code {
					t.Fatalf("got %v, want code %d", err, tc.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.ES != tc.es || o.PT != tc.pt || o.Wait != tc.wait {
				t.Errorf("got ES %v pt %d wait %s, want %v %d %s", o.ES, o.PT, o.Wait, tc.es, tc.pt, tc.wait)
			}
		})
	}
}

// FuzzSendOptions: whatever a caller sends, the options are in range or
// the call is refused with -300.
func FuzzSendOptions(f *testing.F) {
	f.Add("100000001", "0", "96", "1", "", "5000")
	f.Add("x", "-1", "300", "", "2", "-5")
	f.Fuzz(func(t *testing.T, ssrc, srcPort, pt, usePS, typ, delay string) {
		o, err := sendOptions(params{"ssrc": ssrc, "src_port": srcPort, "pt": pt, "use_ps": usePS, "type": typ, "close_delay_ms": delay})
		if err != nil {
			if e, ok := err.(*apiError); !ok || e.code != CodeInvalidArgs || e.msg == "" {
				t.Fatalf("refused with %v, want -300 and a message", err)
			}
			return
		}
		if o.SrcPort < 0 || o.SrcPort > 65535 || o.PT > 127 {
			t.Fatalf("accepted out of range: %+v", o)
		}
	})
}
