package auth

import (
	"github.com/berthmedia/berth/internal/config"
)

// Hot reload of the [auth] section. Sessions read the users while another
// goroutine (a reload, setServerConfig) replaces them, so the set lives
// behind an atomic pointer: a check sees the old set or the new one, never
// half of each. Until SetUsers is called the exported fields are used, so
// a Checker built as a literal works as before.
//
// LEAD: branch hooks defines SetUsers on Checker too (CONTRACTS.md); keep
// one of the two. This one is the minimal version reload needs.

// userSet is one generation of the [auth] section.
type userSet struct {
	publish, play []config.User
	realm         string
}

// SetUsers replaces the users and the realm; checks that start afterwards
// use them. Safe to call while sessions check credentials.
func (c *Checker) SetUsers(publish, play []config.User, realm string) {
	c.live.Store(&userSet{
		publish: append([]config.User(nil), publish...),
		play:    append([]config.User(nil), play...),
		realm:   realm,
	})
}

// RealmName is the realm sent in challenges ([auth] realm).
func (c *Checker) RealmName() string {
	if c == nil {
		return ""
	}
	if s := c.live.Load(); s != nil {
		return s.realm
	}
	return c.Realm
}

// current returns the live set, or nil before the first SetUsers.
func (c *Checker) current() *userSet { return c.live.Load() }
