// Package auth holds the users allowed to publish and to play, from the
// [auth] section, and checks name/password pairs for every protocol. RTSP
// wraps it in Basic/Digest challenges; RTMP and HTTP-FLV take the pair from
// the URL's query (?user=NAME&pass=PASSWORD).
package auth

import (
	"crypto/subtle"
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

// Checker answers whether a user may do an action. The zero value allows everyone.
type Checker struct {
	Publish []config.User
	Play    []config.User
	Realm   string

	live atomic.Pointer[userSet] // set by SetUsers (live.go); nil: the fields above
}

// Required reports whether the action needs credentials at all.
func (c *Checker) Required(a Action) bool {
	if c == nil {
		return false
	}
	return len(c.users(a)) > 0
}

// Users lists the users allowed the action, for Digest verification.
func (c *Checker) Users(a Action) []config.User {
	if c == nil {
		return nil
	}
	return c.users(a)
}

func (c *Checker) users(a Action) []config.User {
	if s := c.current(); s != nil {
		if a == Publish {
			return s.publish
		}
		return s.play
	}
	if a == Publish {
		return c.Publish
	}
	return c.Play
}

// Allow checks a name/password pair in constant time per user.
func (c *Checker) Allow(a Action, name, password string) bool {
	if !c.Required(a) {
		return true
	}
	ok := false
	for _, u := range c.users(a) {
		n := subtle.ConstantTimeCompare([]byte(u.Name), []byte(name))
		p := subtle.ConstantTimeCompare([]byte(u.Password), []byte(password))
		if n&p == 1 {
			ok = true
		}
	}
	return ok
}
