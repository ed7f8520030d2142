package api

import (
	"net/http"
	"strings"
	"testing"
)

// FuzzReadParams: a call's body is untrusted bytes; whatever they are,
// reading them gives parameters or an error, never a panic, and the query
// string still wins.
func FuzzReadParams(f *testing.F) {
	for _, tc := range []struct{ ct, body string }{
		{"application/json", `{"secret":"x","force":true,"port":0}`},
		{"application/json", `{"a":{"b":[1,2]},"c":null}`},
		{"application/json", `[1,2,3]`},
		{"application/json", ``},
		{"application/x-www-form-urlencoded", "secret=x&app=live&stream=%zz"},
		{"multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--x--\r\n"},
		{"text/plain", "anything"},
	} {
		f.Add(tc.ct, tc.body)
	}
	f.Fuzz(func(t *testing.T, ct, body string) {
		r, err := http.NewRequest(http.MethodPost, "http://h"+Prefix+"getMediaList?secret=q", strings.NewReader(body))
		if err != nil {
			t.Skip()
		}
		r.Header.Set("Content-Type", ct)
		p, err := readParams(r)
		if err == nil && p["secret"] != "q" {
			t.Fatalf("the query's secret lost to the body's: %q", p["secret"])
		}
	})
}
