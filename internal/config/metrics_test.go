package config

import (
	"strings"
	"testing"
)

// [metrics] allow_ip takes addresses and CIDRs, prints them back in the
// form it read, and names a bad entry.
func TestMetricsAllowIP(t *testing.T) {
	cases := []struct{ ini, want, wantErr string }{
		{ini: "", want: ""},
		{ini: "127.0.0.1", want: "127.0.0.1/32"},
		{ini: " 10.1.2.3/8 , ::1,::ffff:192.0.2.1", want: "10.0.0.0/8,::1/128,192.0.2.1/32"},
		{ini: "10.0.0.0/8,prometheus", wantErr: `"prometheus" is neither an IP address nor a CIDR`},
	}
	for _, tc := range cases {
		c := Default()
		err := c.Parse(strings.NewReader("[metrics]\nallow_ip="+tc.ini+"\n"), "x.ini")
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "[metrics] allow_ip") {
				t.Errorf("%q: err = %v, want %q", tc.ini, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.ini, err)
			continue
		}
		if got := lookup("metrics", "allow_ip").get(c); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.ini, got, tc.want)
		}
		if !c.Metrics.Enable {
			t.Errorf("metrics are off by default")
		}
	}
}
