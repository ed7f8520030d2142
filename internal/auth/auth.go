// Package auth holds the users allowed to publish and to play, from the
// [auth] section, and checks name/password pairs for every protocol. RTSP
// wraps it in Basic/Digest challenges; RTMP and HTTP-FLV take the pair from
// the URL's query (?user=NAME&pass=PASSWORD).
//
// After the credentials, a Gate (the web hooks' on_publish / on_play) may
// still refuse: protocols call Authorize before they publish or play.
package auth

import (
	"context"
	"crypto/subtle"
	"net/url"
	"strings"
	"sync/atomic"

	"github.com/berthmedia/berth/internal/config"
)

// Action is what a client wants to do.
type Action uint8

const (
	Publish Action = iota
	Play
)

func (a Action) String() string {
	if a == Publish {
		return "publish"
	}
	return "play"
}

// Request is a publish or play that passed the credentials check, as the
// Gate sees it.
type Request struct {
	Action Action
	Proto  string // schema: rtsp, rtmp, http-flv, ws-flv, rtp
	App    string
	Stream string
	Params string // the URL's query, credentials removed
	Remote string // ip:port
	ID     string // session id, where the protocol has one
	User   string // the name the client authenticated with, "" if none
}

// Gate decides a publish or play after the credentials check (the web hook
// on_publish / on_play). A non-nil error refuses, its text is the reason.
// It may block up to the hook timeout: callers are protocol sessions
// before they publish/play, never the packet path.
type Gate interface {
	Authorize(ctx context.Context, r Request) error
}

// users is one immutable set of [auth] users; SetUsers swaps it whole.
type users struct {
	publish, play []config.User
	realm         string
}

// Checker answers whether a user may do an action. The zero value allows
// everyone. Publish, Play and Realm are the users it starts with; set them
// before first use, and call SetUsers to change them on a live server.
type Checker struct {
	Publish []config.User
	Play    []config.User
	Realm   string
	// Gate, if set, is asked by Authorize; nil allows.
	Gate Gate

	live     atomic.Pointer[users] // set by SetUsers; nil: the fields above
	refusals [4]atomic.Uint64      // by refusalKeys index
}

var refusalKeys = [4]string{"publish/credentials", "play/credentials", "publish/hook", "play/hook"}

// SetUsers replaces the users and realm; safe while sessions check (hot reload).
func (c *Checker) SetUsers(publish, play []config.User, realm string) {
	c.live.Store(&users{publish: publish, play: play, realm: realm})
}

func (c *Checker) current() *users {
	if u := c.live.Load(); u != nil {
		return u
	}
	return &users{publish: c.Publish, play: c.Play, realm: c.Realm}
}

// Required reports whether the action needs credentials at all.
func (c *Checker) Required(a Action) bool {
	if c == nil {
		return false
	}
	return len(c.current().of(a)) > 0
}

// Users lists the users allowed the action, for Digest verification.
func (c *Checker) Users(a Action) []config.User {
	if c == nil {
		return nil
	}
	return c.current().of(a)
}

// RealmName is the realm sent in challenges.
func (c *Checker) RealmName() string {
	if c == nil {
		return ""
	}
	return c.current().realm
}

func (u *users) of(a Action) []config.User {
	if a == Publish {
		return u.publish
	}
	return u.play
}

// Allow checks a name/password pair in constant time per user. A refusal
// is counted (Refusals).
func (c *Checker) Allow(a Action, name, password string) bool {
	if c == nil {
		return true
	}
	list := c.current().of(a)
	if len(list) == 0 {
		return true
	}
	ok := false
	for _, u := range list {
		n := subtle.ConstantTimeCompare([]byte(u.Name), []byte(name))
		p := subtle.ConstantTimeCompare([]byte(u.Password), []byte(password))
		if n&p == 1 {
			ok = true
		}
	}
	if !ok {
		c.CountRefusal(a)
	}
	return ok
}

// CountRefusal counts a credentials refusal made by a protocol that checks
// credentials itself (RTSP Digest).
func (c *Checker) CountRefusal(a Action) {
	if c != nil {
		c.refusals[a&1].Add(1)
	}
}

// Authorize asks the Gate whether r may go ahead; nil Gate allows. A
// refusal is counted.
func (c *Checker) Authorize(ctx context.Context, r Request) error {
	if c == nil || c.Gate == nil {
		return nil
	}
	err := c.Gate.Authorize(ctx, r)
	if err != nil {
		c.refusals[2+r.Action&1].Add(1)
	}
	return err
}

// Refusals counts refusals since start: "publish/credentials",
// "play/credentials", "publish/hook", "play/hook".
func (c *Checker) Refusals() map[string]uint64 {
	out := make(map[string]uint64, len(refusalKeys))
	for i, k := range refusalKeys {
		if c != nil {
			out[k] = c.refusals[i].Load()
		} else {
			out[k] = 0
		}
	}
	return out
}

// CleanParams drops the credentials (user, pass) from a URL query and keeps
// the other parameters as the client sent them, in order: the params a
// hook server sees.
func CleanParams(raw string) string {
	if raw == "" {
		return ""
	}
	var keep []string
	for _, kv := range strings.Split(raw, "&") {
		if kv == "" {
			continue
		}
		k, _, _ := strings.Cut(kv, "=")
		if k, err := url.QueryUnescape(k); err == nil && (k == "user" || k == "pass") {
			continue
		}
		keep = append(keep, kv)
	}
	return strings.Join(keep, "&")
}
