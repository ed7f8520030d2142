package httpstream

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/berthmedia/berth/internal/auth"
	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/logging"
)

func TestPreflight(t *testing.T) {
	for _, c := range []struct {
		method   string
		answered bool
		status   int
	}{
		{http.MethodOptions, true, http.StatusNoContent},
		{http.MethodPost, true, http.StatusMethodNotAllowed},
		{http.MethodGet, false, http.StatusOK},
		{http.MethodHead, false, http.StatusOK},
	} {
		w := httptest.NewRecorder()
		got := Preflight(w, httptest.NewRequest(c.method, "/live/s.live.flv", nil), "GET, OPTIONS", "HTTP-FLV")
		if got != c.answered || w.Code != c.status || w.Header().Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s: answered %v status %d CORS %q, want %v %d *", c.method, got, w.Code,
				w.Header().Get("Access-Control-Allow-Origin"), c.answered, c.status)
		}
	}
}

type refuse struct{}

func (refuse) Authorize(context.Context, auth.Request) error { return errors.New("token expired") }

func TestCheckPlay(t *testing.T) {
	users := []config.User{{Name: "u", Password: "p"}}
	for _, c := range []struct {
		name    string
		checker *auth.Checker
		query   string
		ok      bool
		status  int
		params  string
	}{
		{"anyone", &auth.Checker{}, "token=1", true, http.StatusOK, "token=1"},
		{"credentials removed from params", &auth.Checker{Play: users}, "user=u&pass=p&token=1", true, http.StatusOK, "token=1"},
		{"wrong password", &auth.Checker{Play: users}, "user=u&pass=x", false, http.StatusUnauthorized, ""},
		{"hook refuses", &auth.Checker{Gate: refuse{}}, "", false, http.StatusForbidden, ""},
	} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "/live/s.live.flv?"+c.query, nil)
		params, ok := CheckPlay(w, r, c.checker, logging.Discard(), "http-flv", "live/s")
		if ok != c.ok || w.Code != c.status || params != c.params {
			t.Errorf("%s: ok %v status %d params %q, want %v %d %q", c.name, ok, w.Code, params, c.ok, c.status, c.params)
		}
	}
}

func TestSubscribeFailed(t *testing.T) {
	for err, want := range map[error]int{hub.ErrNotFound: http.StatusNotFound, hub.ErrHubClosed: http.StatusServiceUnavailable} {
		w := httptest.NewRecorder()
		SubscribeFailed(w, logging.Discard(), "http-flv", "live/s", err)
		if w.Code != want {
			t.Errorf("%v: status %d, want %d", err, w.Code, want)
		}
	}
}
