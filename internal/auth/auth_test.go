package auth

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/berthmedia/berth/internal/config"
)

func TestCleanParams(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"token=1", "token=1"},
		{"user=a&pass=b", ""},
		{"user=a&token=x&pass=b&k", "token=x&k"},
		{"us%65r=a&b=2", "b=2"},
		{"&&a=1&", "a=1"},
		{"username=a", "username=a"},
	} {
		if got := CleanParams(tc.in); got != tc.want {
			t.Errorf("CleanParams(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

type gateFunc func(Request) error

func (f gateFunc) Authorize(_ context.Context, r Request) error { return f(r) }

func TestAuthorizeAsksTheGateAndCountsRefusals(t *testing.T) {
	var nilChecker *Checker
	if err := nilChecker.Authorize(context.Background(), Request{}); err != nil {
		t.Errorf("nil checker: %v", err)
	}
	c := &Checker{Play: []config.User{{Name: "v", Password: "p"}}}
	if err := c.Authorize(context.Background(), Request{}); err != nil {
		t.Errorf("nil gate: %v", err)
	}
	c.Gate = gateFunc(func(r Request) error {
		if r.Stream == "no" {
			return errors.New("on_publish replied code -1")
		}
		return nil
	})
	if err := c.Authorize(context.Background(), Request{Action: Publish, Stream: "no"}); err == nil {
		t.Error("gate refusal not returned")
	}
	if err := c.Authorize(context.Background(), Request{Action: Play, Stream: "yes"}); err != nil {
		t.Error(err)
	}
	if c.Allow(Play, "v", "wrong") || !c.Allow(Play, "v", "p") || !c.Allow(Publish, "any", "") {
		t.Error("Allow")
	}
	got := c.Refusals()
	want := map[string]uint64{"publish/credentials": 0, "play/credentials": 1, "publish/hook": 1, "play/hook": 0}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("Refusals()[%s] = %d, want %d (%v)", k, got[k], v, got)
		}
	}
}

// TestSetUsersIsLive: users set while other goroutines check apply at once
// and race with nothing (run with -race).
func TestSetUsersIsLive(t *testing.T) {
	c := &Checker{Publish: []config.User{{Name: "a", Password: "1"}}, Realm: "r1"}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				c.Allow(Publish, "a", "1")
				c.Required(Play)
				c.RealmName()
			}
		}()
	}
	for range 50 {
		c.SetUsers([]config.User{{Name: "b", Password: "2"}}, nil, "r2")
	}
	wg.Wait()
	if c.Allow(Publish, "a", "1") || !c.Allow(Publish, "b", "2") || c.RealmName() != "r2" || c.Required(Play) {
		t.Error("SetUsers did not replace the users")
	}
}
